"""Writing data as YAML that afctl's loader reads back to exactly the same values."""

from __future__ import annotations

import io
from functools import cache
from typing import Any

from afctl.manifests.yaml_loader import resolve_plain


@cache
def _yaml() -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.representer import SafeRepresenter

    class Representer(SafeRepresenter):
        def represent_str(self, data: str) -> Any:
            # Quote any string that a plain scalar would turn into something else for our
            # YAML 1.2 core-schema loader (or that looks like a date to other readers).
            plain_changes = data == "" or resolve_plain(data) is not data
            looks_like_date = data[:4].isdigit() and data[4:5] == "-"
            # Unicode line breaks (NEL, LS, PS) would be folded inside single quotes.
            odd_breaks = any(c in data for c in "\x85\u2028\u2029\r")
            style = '"' if plain_changes or looks_like_date or odd_breaks else None
            if style is None and "\n" in data and data.strip("\n") and _fits_block(data):
                style = "|"  # multi-line text (instructions, prompts) reads best as a block
            return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)

    Representer.add_representer(str, Representer.represent_str)
    yaml = YAML(typ="safe", pure=True)
    yaml.Representer = Representer
    yaml.default_flow_style = False
    yaml.sort_base_mapping_type_on_output = False  # type: ignore[assignment]
    yaml.allow_unicode = True
    yaml.width = 100
    return yaml


def _fits_block(text: str) -> bool:
    """Whether a literal block scalar can carry `text` exactly."""
    lines = text.split("\n")
    return (
        not text.startswith((" ", "\t"))
        and all(line == line.rstrip(" \t") for line in lines)
        and all(c == "\n" or c == "\t" or c.isprintable() for c in text)
    )


def dump_yaml(data: Any) -> str:
    """One YAML document for `data` (dicts, lists, str, int, float, bool, None)."""
    stream = io.StringIO()
    _yaml().dump(data, stream)
    return stream.getvalue()


def dump_all_yaml(documents: list[Any]) -> str:
    """Several documents separated by `---`."""
    stream = io.StringIO()
    _yaml().dump_all(documents, stream)
    return stream.getvalue()

"""The values that flow through a workflow: its inputs (from flags, files or a caller), each
step's input rendered from the scope, and each agent step's answer read as data."""

from __future__ import annotations

import json
import os
from typing import Any

from afctl.errors import RunError


class StepFailed(RunError):
    """A step's attempt failed; `kind` is the failure class `retry.on` names."""

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind


def structured(text: str) -> Any:
    """An agent's answer as data when it is a JSON object or list (fields addressable)."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    return text


def render_input(value: Any, scope: dict[str, Any], where: str, schema: Any = None) -> Any:
    """A step's input rendered over the scope: strings are templates; mappings and lists
    render each value. A string that is one `{{ expression }}` keeps the expression's type
    (`"{{ event.body.orders }}"` stays a list). Where the target's JSON Schema wants a
    non-string, rendered text that reads as JSON becomes that value (`"{{ n }} "` → 42)."""
    from jinja2 import TemplateError

    from afctl.safety.templates import TemplateFailure, render_value

    if isinstance(value, str):
        try:
            rendered = render_value(value, scope)
        except (TemplateError, TemplateFailure) as exc:
            raise StepFailed(f"{where}: cannot render the input: {exc}") from None
        wanted = schema.get("type") if isinstance(schema, dict) else None
        if isinstance(rendered, str) and wanted not in (None, "string") and rendered != value:
            try:
                return json.loads(rendered)
            except ValueError:
                return rendered
        return rendered
    properties = (schema or {}).get("properties") or {} if isinstance(schema, dict) else {}
    if isinstance(value, dict):
        return {
            k: render_input(v, scope, f"{where}.{k}", properties.get(k)) for k, v in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema, dict) else None
        return [render_input(v, scope, f"{where}[{i}]", items) for i, v in enumerate(value)]
    return value


def coerce_inputs(raw: dict[str, Any], schema: Any) -> dict[str, Any]:
    """Inputs given as text (`--input count=3`), read as YAML scalars where the schema wants
    something other than a string (`count` an integer: 3), left as text where it wants one."""
    from afctl.manifests.yaml_loader import load_bytes

    properties = (schema or {}).get("properties") or {} if isinstance(schema, dict) else {}
    coerced = {}
    for key, value in raw.items():
        wanted = (properties.get(key) or {}).get("type")
        if isinstance(value, str) and wanted not in (None, "string"):
            loaded = load_bytes(value.encode(), "<input>")
            if loaded.documents and not any(d.is_error for d in loaded.diagnostics):
                value = loaded.documents[0].data
        coerced[key] = value
    return coerced


def read_input_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A workflow's inputs as one JSON or YAML object in a file (read safely).

    Raises:
        UsageError: the file cannot be read, or does not hold one object.
    """
    from afctl.manifests.yaml_loader import load_mapping

    return load_mapping(path, "--input-file", "JSON or YAML object of inputs")

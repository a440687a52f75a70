"""`${env:NAME}` and `${var:NAME}` references in manifest values.

References stay as written in state, plans and logs; they are resolved only at the moment of
use (`resolve`), so secret values never reach storage. `$${...}` writes a literal `${...}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from afctl.errors import UserError

SOURCES = ("env", "var")
TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}?")
_VALID = re.compile(r"(env|var):([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Reference:
    source: str
    """`env` or `var`."""
    name: str
    offset: int
    """0-based character offset of the `$` within the string."""


@dataclass(frozen=True)
class MalformedReference:
    text: str
    offset: int
    message: str
    hint: str


def scan(value: str) -> Iterator[Reference | MalformedReference]:
    """Every reference in `value`, well-formed or not, in order."""
    if "${" not in value:
        return
    for match in TOKEN.finditer(value):
        if match.group(0) == "$${":
            continue
        whole = match.group(0)
        inner = match.group(1)
        if not whole.endswith("}"):
            yield MalformedReference(
                whole, match.start(), "unterminated reference", "close it with }: ${env:NAME}"
            )
            continue
        valid = _VALID.fullmatch(inner)
        if valid:
            yield Reference(valid.group(1), valid.group(2), match.start())
            continue
        source, colon, name = inner.partition(":")
        if not colon:
            hint = (
                f"write ${{env:{inner}}} for an environment variable, "
                f"or $${{{inner}}} for a literal"
            )
            message = f"reference {whole} names no source"
        elif source not in SOURCES:
            hint = "references are ${env:NAME} or ${var:NAME}"
            message = f'unknown reference source "{source}" in {whole}'
        else:
            hint = "names are letters, digits and _, not starting with a digit"
            message = f'invalid name "{name}" in {whole}'
        yield MalformedReference(whole, match.start(), message, hint)


def resolve(value: str, env: Mapping[str, str], variables: Mapping[str, str]) -> str:
    """`value` with every reference replaced; raises UserError naming what is missing."""
    if "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        valid = _VALID.fullmatch(match.group(1) or "")
        if valid is None or not match.group(0).endswith("}"):
            raise UserError(f"malformed reference {match.group(0)}")
        source, name = valid.groups()
        table = env if source == "env" else variables
        if name not in table:
            flag = "set the environment variable" if source == "env" else "pass --var"
            raise UserError(f"${{{source}:{name}}} is not set", hint=f"{flag} {name}")
        return table[name]

    return TOKEN.sub(replace, value)

"""What every tool offers the agent loop."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from afctl.errors import RunError
from afctl.providers.types import ToolSpec

if TYPE_CHECKING:
    from afctl.tool_context import ToolContext


class ToolFailed(RunError):
    """A tool call failed; the message goes back to the model as the tool's result."""


class Tool(Protocol):
    spec: ToolSpec
    timeout_s: float | None

    async def call(self, arguments: dict[str, Any]) -> Any: ...


ToolFactory = Callable[[str, dict[str, Any], "ToolContext"], Tool]
"""Builds a tool from its name and Tool spec."""


def _refuse(uri: str) -> Any:
    raise ValueError(f"afctl does not fetch schemas ({uri})")


@lru_cache(maxsize=512)
def _compiled(schema_json: str) -> Any:
    import jsonschema_rs

    return jsonschema_rs.validator_for(json.loads(schema_json), retriever=_refuse)


def result_text(value: Any) -> str:
    """A tool's return value as the text the model reads."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


@dataclass
class Validator:
    """Checks a call's arguments against the tool's JSON Schema (never fetching `$ref`s)."""

    schema: dict[str, Any]

    def __post_init__(self) -> None:
        self._validator = _compiled(json.dumps(self.schema, sort_keys=True))

    def problems(self, arguments: Any) -> list[str]:
        try:
            return [
                f"{'/'.join(map(str, e.instance_path)) or 'arguments'}: {e.message}"
                for e in self._validator.iter_errors(arguments)
            ][:5]
        except ValueError as exc:
            return [str(exc)]


def with_defaults(schema: Any, value: Any) -> Any:
    """`value` with the defaults its JSON Schema declares filled in where a property is
    missing (nested objects included; a missing object whose properties have defaults is
    made from them). A new value: the argument is left as it is."""
    import copy

    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    properties = schema.get("properties")
    if not isinstance(properties, dict):
        return value
    filled = dict(value)
    for name, prop in properties.items():
        if not isinstance(prop, dict):
            continue
        if name in filled:
            filled[name] = with_defaults(prop, filled[name])
        elif "default" in prop:
            filled[name] = copy.deepcopy(prop["default"])
        elif prop.get("type") == "object" and prop.get("properties"):
            nested = with_defaults(prop, {})
            if nested:
                filled[name] = nested
    return filled


def json_problems(text: str, validator: Validator) -> list[str]:
    """Why `text` (JSON, perhaps in a markdown code fence) does not satisfy the schema."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").removeprefix("json").strip()
    try:
        value = json.loads(body)
    except ValueError:
        return ["the text is not JSON"]
    return validator.problems(value)

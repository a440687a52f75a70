"""Turn JSON Schema validation errors into diagnostics a person can act on."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from afctl.diagnostics import Diagnostic, did_you_mean, error
from afctl.diagnostics import type_name as type_name
from afctl.manifests.positions import Position, locate, make_pointer
from afctl.manifests.schema import resolve

_TYPE_NAMES = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def dotted(parts: Sequence[str | int]) -> str:
    """`spec.steps[2].agent` for the path parts ["spec", "steps", 2, "agent"]."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "the document"


def _keyword_schema(location: str) -> tuple[str, dict[str, Any]]:
    """The subschema holding the failed keyword (the parent of the keyword's location)."""
    uri, _, fragment = location.partition("#")
    parent = fragment.rsplit("/", 1)[0] if fragment else ""
    return resolve(f"{uri}#{parent}")


def _preview(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


def schema_diagnostics(
    errors: Iterator[Any], data: Any, positions: Position, where: dict[str, Any]
) -> list[Diagnostic]:
    """Diagnostics for jsonschema-rs errors on one document.

    Args:
        errors: the validator's `iter_errors(data)`.
        data: the document that was validated.
        positions: its position tree.
        where: `file` and `document` for every diagnostic.
    """
    found: list[Diagnostic] = []
    for err in errors:
        found.extend(_convert(err, data, positions, where))
    return found


def _at(
    positions: Position, parts: Sequence[str | int], where: dict[str, Any], *, key: bool = False
) -> dict[str, Any]:
    line, col = locate(positions, parts, key=key)
    return {**where, "line": line + 1, "col": col + 1, "pointer": make_pointer(parts)}


def _convert(
    err: Any, data: Any, positions: Position, where: dict[str, Any]
) -> Iterator[Diagnostic]:
    # one branch per kind of jsonschema-rs error, in one place: the mapping from the
    # validator's words to afctl's diagnostics reads best whole
    parts: list[str | int] = list(err.instance_path)
    kind = type(err.kind).__name__
    field = dotted(parts)
    try:
        _, schema = _keyword_schema(err.absolute_keyword_location or "")
    except (KeyError, IndexError, ValueError):
        schema = {}
    hint = schema.get("x-afctl-hint")
    instance = err.instance

    if kind == "AdditionalProperties":
        allowed = sorted(schema.get("properties", {}))
        for name in err.kind.unexpected:
            yield error(
                "schema.unknown-field",
                f'unknown field "{name}" in {field}',
                hint=did_you_mean(name, allowed)
                or ("allowed fields: " + ", ".join(allowed) if allowed else None),
                **_at(positions, [*parts, name], where, key=True),
            )
    elif kind == "Required":
        name = err.kind.property
        described = schema.get("properties", {}).get(name, {})
        description = described.get("description") if isinstance(described, dict) else None
        yield error(
            "schema.required",
            f'missing required field "{name}" in {field}',
            hint=f'add "{name}"' + (f": {description}" if description else ""),
            **_at(positions, parts, where, key=bool(parts)),
        )
    elif kind == "Type":
        expected = " or ".join(_TYPE_NAMES.get(t, t) for t in err.kind.types)
        if hint is None and "string" in err.kind.types and isinstance(instance, (int, float)):
            hint = f'quote the value to make it a string: "{instance}"'
        yield error(
            "schema.type",
            f"{field} must be {expected}, not {type_name(instance)}",
            hint=hint,
            **_at(positions, parts, where),
        )
    elif kind == "Enum":
        options = list(err.kind.options)
        listed = ", ".join(str(o) for o in options)
        if hint is None and isinstance(instance, str):
            hint = did_you_mean(instance, [str(o) for o in options])
        yield error(
            "schema.enum",
            f"{field} must be one of: {listed} (got {_preview(instance)})",
            hint=hint,
            **_at(positions, parts, where),
        )
    elif kind == "Constant":
        yield error(
            "schema.const",
            f"{field} must be {_preview(err.kind.expected_value)}, not {_preview(instance)}",
            hint=hint,
            **_at(positions, parts, where),
        )
    elif kind == "Pattern":
        yield error(
            "schema.pattern",
            f"{field} has an invalid value {_preview(instance)}",
            hint=hint or f"it must match the regular expression {err.kind.pattern}",
            **_at(positions, parts, where),
        )
    elif kind == "PropertyNames":
        inner = err.kind.error
        name = getattr(inner, "instance", None)
        target = [*parts, name] if isinstance(name, str) else parts
        yield error(
            "schema.key",
            f"{field} has an invalid key {_preview(name)}",
            hint=schema.get("propertyNames", {}).get("x-afctl-hint") or inner.message,
            **_at(positions, target, where, key=True),
        )
    elif kind in ("OneOfNotValid", "OneOfMultipleValid", "AnyOf"):
        message = schema.get("x-afctl-message") or err.message
        yield error("schema.choice", f"{field}: {message}", hint=hint,
                    **_at(positions, parts, where))  # fmt: skip
    elif kind == "UniqueItems":
        yield error(
            "schema.unique",
            f"{field} lists the same item more than once",
            hint="remove the duplicates",
            **_at(positions, parts, where),
        )
    else:
        code = {
            "Minimum": "schema.range",
            "Maximum": "schema.range",
            "ExclusiveMinimum": "schema.range",
            "ExclusiveMaximum": "schema.range",
            "MinLength": "schema.length",
            "MaxLength": "schema.length",
            "MinItems": "schema.length",
            "MaxItems": "schema.length",
        }.get(kind, "schema.invalid")
        yield error(code, f"{field}: {err.message}", hint=hint, **_at(positions, parts, where))

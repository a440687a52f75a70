"""`afctl explain`: documentation of kinds and fields, read from the JSON Schemas.

The schemas' `description`s are the only source, so what `explain` says, what editors show on
hover and what validation enforces cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from afctl.diagnostics import did_you_mean
from afctl.errors import UsageError
from afctl.manifests.kinds import API_VERSION, KINDS, find_kind
from afctl.manifests.schema import BASE_URI, kind_schema, resolve

_NO_DEFAULT = object()


@dataclass(frozen=True)
class FieldInfo:
    """One field of an object, as `explain` lists it."""

    name: str
    type: str
    description: str
    required: bool
    """Required wherever the field applies."""
    only_for: tuple[str, ...] = ()
    """Values of the discriminator (`type`) for which the field exists; empty when always."""
    required_for: tuple[str, ...] = ()
    """When it is required for some of its variants only: those."""
    children: tuple[FieldInfo, ...] = ()
    """Nested fields, filled in for `--recursive`."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "description": self.description,
            "required": self.required,
        }
        if self.only_for:
            data["only_for"] = list(self.only_for)
        if self.required_for:
            data["required_for"] = list(self.required_for)
        if self.children:
            data["fields"] = [c.to_dict() for c in self.children]
        return data


@dataclass(frozen=True)
class Explanation:
    kind: str
    path: tuple[str, ...]
    type: str
    description: str
    choices: tuple[Any, ...] = ()
    default: Any = None
    has_default: bool = False
    fields: tuple[FieldInfo, ...] = field(default_factory=tuple)
    discriminator: str | None = None

    @property
    def version(self) -> str:
        return API_VERSION

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "version": self.version,
            "field": ".".join(self.path),
            "type": self.type,
            "description": self.description,
            "fields": [f.to_dict() for f in self.fields],
        }
        if self.choices:
            data["choices"] = list(self.choices)
        if self.has_default:
            data["default"] = self.default
        if self.discriminator:
            data["discriminator"] = self.discriminator
        return data


@dataclass(frozen=True)
class _Node:
    """A subschema with its `$ref`s followed, and the document it lives in."""

    schema: dict[str, Any]
    uri: str


def _view(schema: dict[str, Any], uri: str) -> _Node:
    """Merge a schema with the targets of its `$ref` chain (the referring side wins)."""
    merged = dict(schema)
    seen = set()
    while isinstance(merged.get("$ref"), str):
        ref = merged.pop("$ref")
        if ref in seen:
            break
        seen.add(ref)
        uri, target = resolve(ref, base=uri)
        merged = {**target, **merged}
    return _Node(merged, uri)


def _discriminator_values(branch: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    condition = branch.get("if", {})
    for name, sub in condition.get("properties", {}).items():
        if "const" in sub:
            return name, (str(sub["const"]),)
        if "enum" in sub:
            return name, tuple(str(v) for v in sub["enum"])
    return None, ()


def _fields(
    node: _Node,
) -> tuple[dict[str, tuple[_Node, tuple[str, ...]]], dict[str, tuple[str, ...]], str | None]:
    """Properties of an object schema (variants included), the required names (each with the
    variants that require it; () for always), discriminator."""
    found: dict[str, tuple[_Node, tuple[str, ...]]] = {}
    schema = node.schema
    required: dict[str, tuple[str, ...]] = dict.fromkeys(schema.get("required", ()), ())
    for name, sub in schema.get("properties", {}).items():
        found[name] = (_view(sub, node.uri), ())
    discriminator = None
    every: set[str] = set()
    for branch in schema.get("allOf", ()):
        if "then" not in branch:
            continue
        key, values = _discriminator_values(branch)
        if key is None:
            continue
        discriminator = key
        every.update(values)
        then = _view(branch["then"], node.uri)
        for name in then.schema.get("required", ()):
            if required.get(name) != ():
                required[name] = (*required.get(name, ()), *values)
        for name, sub in then.schema.get("properties", {}).items():
            if name == key:
                continue
            if name in found and found[name][1]:
                previous = found[name]
                found[name] = (previous[0], previous[1] + values)
            elif name not in found:
                found[name] = (_view(sub, then.uri), values)
    for name, (view, only_for) in list(found.items()):
        if only_for and set(only_for) == every:
            found[name] = (view, ())
    for keyword in ("anyOf", "oneOf"):
        for branch in schema.get(keyword, ()):
            view = _view(branch, node.uri)
            for name, sub in view.schema.get("properties", {}).items():
                found.setdefault(name, (_view(sub, view.uri), ()))
    return found, required, discriminator


def type_label(node: _Node) -> str:
    """A short type such as `string`, `[]string`, `Object`, `map[string]string`."""
    schema = node.schema
    if "const" in schema:
        return type(schema["const"]).__name__.replace("str", "string")
    if "enum" in schema:
        kinds = {type(v).__name__ for v in schema["enum"]}
        return "string" if kinds == {"str"} else "enum"
    if "anyOf" in schema or "oneOf" in schema:
        labels = []
        for branch in schema.get("anyOf", schema.get("oneOf", ())):
            label = type_label(_view(branch, node.uri))
            if label not in labels:
                labels.append(label)
        if labels and "any" not in labels:
            return "|".join(labels)
    declared = schema.get("type")
    types = declared if isinstance(declared, list) else [declared] if declared else []
    labels = []
    for kind in types:
        if kind == "array":
            items = schema.get("items")
            inner = type_label(_view(items, node.uri)) if isinstance(items, dict) else "any"
            labels.append(f"[]{inner}")
        elif kind == "object":
            extra = schema.get("additionalProperties")
            if schema.get("properties") or schema.get("allOf"):
                labels.append("Object")
            elif isinstance(extra, dict):
                labels.append("map[string]" + type_label(_view(extra, node.uri)))
            else:
                labels.append("object")
        else:
            labels.append(str(kind))
    if not labels and (schema.get("properties") or schema.get("allOf")):
        return "Object"
    return "|".join(labels) or "any"


def _element(node: _Node) -> _Node:
    """For a list, the schema of its items (explain describes what the list holds)."""
    if node.schema.get("type") == "array" and isinstance(node.schema.get("items"), dict):
        return _view(node.schema["items"], node.uri)
    return node


def _field_infos(node: _Node, depth: int, seen: frozenset[str]) -> tuple[FieldInfo, ...]:
    element = _element(node)
    found, required, _ = _fields(element)
    infos = []
    for name, (sub, only_for) in found.items():
        needed_for = required.get(name)
        always = needed_for == () or (
            needed_for is not None and bool(only_for) and set(only_for) <= set(needed_for)
        )
        partly = () if always or not needed_for else tuple(needed_for)
        key = f"{sub.uri}#{id(sub.schema)}"
        children: tuple[FieldInfo, ...] = ()
        if depth > 0 and key not in seen:
            children = _field_infos(sub, depth - 1, seen | {key})
        infos.append(
            FieldInfo(
                name=name,
                type=type_label(sub),
                description=str(sub.schema.get("description", "")),
                required=always,
                only_for=only_for,
                required_for=partly,
                children=children,
            )
        )
    return tuple(infos)


def explain(target: str, *, recursive: bool = False) -> Explanation:
    """Document `Kind` or `Kind.field.path`.

    Raises:
        UsageError: the kind or a field does not exist (with a "did you mean" hint).
    """
    head, *path = [part for part in target.strip().split(".") if part] or [""]
    kind = find_kind(head)
    node = _view(kind_schema(kind), BASE_URI + KINDS[kind])
    walked: list[str] = []
    for part in path:
        element = _element(node)
        found, _, _ = _fields(element)
        if part in found:
            node = found[part][0]
        elif isinstance(element.schema.get("additionalProperties"), dict):
            node = _view(element.schema["additionalProperties"], element.uri)
        else:
            where = ".".join([kind, *walked])
            hint = did_you_mean(part, found) or (
                "fields: " + ", ".join(found) if found else f"{where} has no fields"
            )
            raise UsageError(f"{where} has no field {part!r}", hint=hint)
        walked.append(part)
    element = _element(node)
    _, _, discriminator = _fields(element)
    schema = node.schema
    choices = tuple(schema.get("enum", ()))
    return Explanation(
        kind=kind,
        path=tuple(walked),
        type=type_label(node),
        description=str(schema.get("description", "")),
        choices=choices,
        default=schema.get("default"),
        has_default="default" in schema,
        fields=_field_infos(node, 8 if recursive else 0, frozenset()),
        discriminator=discriminator,
    )

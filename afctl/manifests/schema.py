"""The JSON Schemas of the manifest kinds: loading, validators, and what they annotate.

The files in `schemas/` are the single source of truth. Besides validation they carry afctl's
own annotations (JSON Schema ignores unknown keywords), which the semantic checks and
`afctl explain` read from here rather than from a second list in code:

    x-afctl-ref         the string names a resource of this kind (cross-reference check)
    x-afctl-template    the string (or every string below) is a jinja2 template
    x-afctl-expression  the string is a safe expression
    x-afctl-regex       the string is a regular expression
    x-afctl-jsonschema  the value is a user-supplied JSON Schema
    x-afctl-provider    the string names a model provider
    x-afctl-assertion   the string names an eval assertion type (built in or from a plugin)
    x-afctl-hint        what to tell the user when this subschema rejects a value
    x-afctl-message     the message for a failed oneOf/anyOf at this subschema

`$ref`s resolve only inside this registry: afctl never fetches a schema from the network or
the filesystem.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from afctl._resources import data_dir
from afctl.manifests.kinds import API_VERSION, KINDS

BASE_URI = "https://afctl.dev/schemas/v1/"
SHARED = "defs.json"
ANNOTATIONS = (
    "x-afctl-ref",
    "x-afctl-template",
    "x-afctl-expression",
    "x-afctl-regex",
    "x-afctl-jsonschema",
    "x-afctl-provider",
    "x-afctl-assertion",
)
ANY = "*"
"""Path element matching every item of an array or every value of a mapping."""


@cache
def schema_documents() -> dict[str, dict[str, Any]]:
    """Every schema file, keyed by its `$id`."""
    folder = data_dir("schemas")
    documents = {}
    for name in (SHARED, *KINDS.values()):
        document = json.loads((folder / name).read_text("utf-8"))
        documents[document["$id"]] = document
    return documents


@cache
def schema_hash() -> str:
    """A digest of all schema files: validation results cached under another one are stale."""
    digest = hashlib.sha256()
    folder = data_dir("schemas")
    for name in (SHARED, *KINDS.values()):
        digest.update(name.encode())
        digest.update((folder / name).read_bytes())
    return digest.hexdigest()[:16]


def kind_schema(kind: str) -> dict[str, Any]:
    return schema_documents()[BASE_URI + KINDS[kind]]


def _refuse_retrieval(uri: str) -> Any:
    raise ValueError(f"afctl does not fetch schemas ({uri})")


@cache
def validator(kind: str) -> Any:
    """A compiled jsonschema-rs validator for `kind`, resolving `$ref`s only in our registry."""
    import jsonschema_rs

    registry = jsonschema_rs.Registry(list(schema_documents().items()), retriever=_refuse_retrieval)
    return jsonschema_rs.Draft202012Validator(
        kind_schema(kind), registry=registry, retriever=_refuse_retrieval
    )


def resolve(uri: str, base: str | None = None) -> tuple[str, dict[str, Any]]:
    """The subschema a `$ref` or an absolute keyword location points at, with its document URI."""
    if base is not None and not uri.startswith(("https://", "http://")):
        uri = (base if uri.startswith("#") else BASE_URI) + uri
    document_uri, _, fragment = uri.partition("#")
    node: Any = schema_documents()[document_uri]
    for part in fragment.split("/")[1:] if fragment else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return document_uri, node


@dataclass(frozen=True)
class Annotation:
    """An afctl annotation found at `path` (keys, with ANY for items and map values)."""

    path: tuple[str, ...]
    keyword: str
    value: Any


def _walk(
    schema: Any, document_uri: str, path: tuple[str, ...], seen: frozenset[str]
) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every (instance path, subschema) pair reachable from `schema`, following `$ref`s."""
    if not isinstance(schema, dict):
        return
    yield path, schema
    ref = schema.get("$ref")
    if isinstance(ref, str):
        key = (document_uri if ref.startswith("#") else "") + ref
        if key not in seen:
            uri, target = resolve(ref, base=document_uri)
            yield from _walk(target, uri, path, seen | {key})
    for keyword in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(keyword, ()):
            yield from _walk(sub, document_uri, path, seen)
    for keyword in ("then", "else"):
        if keyword in schema:
            yield from _walk(schema[keyword], document_uri, path, seen)
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, document_uri, (*path, name), seen)
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], document_uri, (*path, ANY), seen)
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], document_uri, (*path, ANY), seen)


@cache
def schema_annotations(kind: str) -> tuple[Annotation, ...]:
    """The afctl annotations of `kind`'s schema, each with the instance path it applies to."""
    found: dict[tuple[tuple[str, ...], str], Annotation] = {}
    uri = BASE_URI + KINDS[kind]
    for path, subschema in _walk(kind_schema(kind), uri, (), frozenset()):
        for keyword in ANNOTATIONS:
            if keyword in subschema:
                found.setdefault((path, keyword), Annotation(path, keyword, subschema[keyword]))
    return tuple(found.values())


_HERE = ""
"""Trie key holding the annotations of the node itself (never a property name we use)."""


@cache
def _annotation_trie(kind: str) -> dict[str, Any]:
    trie: dict[str, Any] = {}
    for annotation in schema_annotations(kind):
        node = trie
        for part in annotation.path:
            node = node.setdefault(part, {})
        node.setdefault(_HERE, []).append((annotation.keyword, annotation.value))
    return trie


def annotated_values(kind: str, data: Any) -> Iterator[tuple[tuple[str | int, ...], Any, str, Any]]:
    """(path, value, keyword, annotation value) for every annotated value in a document.

    One walk over the document follows all of the kind's annotation paths at once.
    """
    stack: list[tuple[dict[str, Any], Any, tuple[str | int, ...]]] = [
        (_annotation_trie(kind), data, ())
    ]
    while stack:
        trie, value, path = stack.pop()
        for key, sub in trie.items():
            if key == _HERE:
                for keyword, annotation in sub:
                    yield path, value, keyword, annotation
            elif key == ANY:
                if isinstance(value, list):
                    stack.extend((sub, item, (*path, i)) for i, item in enumerate(value))
                elif isinstance(value, dict):
                    stack.extend((sub, item, (*path, k)) for k, item in value.items())
            elif isinstance(value, dict) and key in value:
                stack.append((sub, value[key], (*path, key)))


def bundled(kind: str) -> dict[str, Any]:
    """`kind`'s schema as one self-contained document, for editors and CI tools."""
    shared = schema_documents()[BASE_URI + SHARED]
    prefix = "defs.json#/$defs/"

    def rewrite(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: rewrite(v) for k, v in node.items()}
            ref = out.get("$ref")
            if isinstance(ref, str) and ref.startswith(prefix):
                out["$ref"] = "#/$defs/" + ref[len(prefix) :]
            return out
        if isinstance(node, list):
            return [rewrite(v) for v in node]
        return node

    own: dict[str, Any] = rewrite(kind_schema(kind))
    own.pop("$id", None)
    defs = {**rewrite(shared["$defs"]), **own.get("$defs", {})}
    own["$defs"] = defs
    return own


def bundled_all() -> dict[str, Any]:
    """One schema accepting a manifest of any kind, dispatching on `kind` (for editors)."""
    defs: dict[str, Any] = {}
    branches = []
    for kind in KINDS:
        schema = bundled(kind)
        defs.update(schema.pop("$defs"))
        schema.pop("$schema", None)
        defs[kind] = schema
        branches.append(
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {"$ref": f"#/$defs/{kind}"},
            }
        )
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "afctl manifest",
        "description": "Any afctl manifest; the `kind` field selects the schema.",
        "type": "object",
        "required": ["apiVersion", "kind"],
        "properties": {
            "apiVersion": {"const": API_VERSION, "description": "Always `afctl/v1`."},
            "kind": {"enum": list(KINDS), "description": "The resource kind."},
        },
        "allOf": branches,
        "$defs": defs,
    }


def export_schemas(directory: Path) -> list[Path]:
    """Write one self-contained schema per kind, plus `afctl.json` for any kind.

    Files are named after the kind in lowercase (`agent.json`); editors point at them with a
    `# yaml-language-server: $schema=...` line.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    documents = {KINDS[kind]: bundled(kind) for kind in KINDS}
    documents["afctl.json"] = bundled_all()
    for name, document in documents.items():
        path = directory / name
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", "utf-8")
        written.append(path)
    return written

from __future__ import annotations

from typing import Any

import jsonschema_rs
import pytest

from afctl.manifests import schema as schemas
from afctl.manifests.kinds import KINDS
from afctl.manifests.schema import ANY, bundled, bundled_all, resolve, schema_annotations


def _all_subschemas(node: Any, uri: str, path: str) -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    if isinstance(node, dict):
        found.append((uri, path, node))
        for key, value in node.items():
            found.extend(_all_subschemas(value, uri, f"{path}/{key}"))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found.extend(_all_subschemas(value, uri, f"{path}/{index}"))
    return found


@pytest.mark.parametrize("uri", sorted(schemas.schema_documents()))
def test_every_schema_is_valid_draft_2020_12(uri):
    document = schemas.schema_documents()[uri]
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema_rs.meta.validate(document)


def _described(schema: dict[str, Any], uri: str) -> bool:
    seen = set()
    while "description" not in schema and isinstance(schema.get("$ref"), str):
        if schema["$ref"] in seen:
            return False
        seen.add(schema["$ref"])
        uri, schema = resolve(schema["$ref"], base=uri)
    return bool(schema.get("description"))


def test_every_property_has_a_description():
    missing = []
    for uri, document in schemas.schema_documents().items():
        for _, path, node in _all_subschemas(document, uri, ""):
            for name, sub in node.get("properties", {}).items() if "properties" in node else ():
                # In if/then branches, the discriminator is documented by the base schema.
                if path.endswith("/if") or "/if/" in path:
                    continue
                if not isinstance(sub, dict) or not _described(sub, uri):
                    missing.append(f"{uri}#{path}/properties/{name}")
    assert missing == []


def test_objects_reject_unknown_fields():
    """Every object with declared properties forbids others (directly or in its variants)."""
    open_objects = []
    for uri, document in schemas.schema_documents().items():
        for _, path, node in _all_subschemas(document, uri, ""):
            if "/if" in path or not node.get("properties"):
                continue
            variants = [b.get("then", {}) for b in node.get("allOf", ())]
            closed = node.get("additionalProperties") is False or (
                variants and all(v.get("additionalProperties") is False for v in variants)
            )
            if not closed and "then" not in path.rsplit("/", 1)[-1]:
                open_objects.append(f"{uri}#{path}")
    # `then` blocks that only add `required` to an object declared elsewhere are fine.
    assert [p for p in open_objects if not p.endswith("/then")] == []


def test_bundled_schemas_are_self_contained_and_agree():
    agent = {
        "apiVersion": "afctl/v1",
        "kind": "Agent",
        "metadata": {"name": "a"},
        "spec": {"model": "local/echo", "tols": []},
    }
    for kind in KINDS:
        document = bundled(kind)
        assert "defs.json" not in str(document)
        jsonschema_rs.meta.validate(document)
    standalone = jsonschema_rs.validator_for(bundled("Agent"))
    combined = jsonschema_rs.validator_for(bundled_all())
    assert not standalone.is_valid(agent)
    assert not combined.is_valid(agent)
    del agent["spec"]["tols"]
    assert standalone.is_valid(agent)
    assert combined.is_valid(agent)
    assert schemas.validator("Agent").is_valid(agent)


def test_kind_local_definitions_never_collide_with_shared_ones():
    shared = set(schemas.schema_documents()[schemas.BASE_URI + schemas.SHARED]["$defs"])
    seen: dict[str, str] = {}
    for kind in KINDS:
        for name in schemas.kind_schema(kind).get("$defs", {}):
            assert name not in shared, name
            assert name not in seen, (name, kind, seen.get(name))
            seen[name] = kind


def test_annotations_are_found_through_refs_and_variants():
    agent = {(a.path, a.keyword, str(a.value)) for a in schema_annotations("Agent")}
    assert (("spec", "tools", ANY), "x-afctl-ref", "Tool") in agent
    assert (("spec", "model"), "x-afctl-ref", "Model") in agent
    assert (("spec", "instructions"), "x-afctl-template", "True") in agent
    guardrail_regex = ("spec", "guardrails", "input", ANY, "pattern")
    assert (guardrail_regex, "x-afctl-regex", "True") in agent
    workflow = {(a.path, a.keyword) for a in schema_annotations("Workflow")}
    assert (("spec", "steps", ANY, "when"), "x-afctl-expression") in workflow
    assert (("spec", "steps", ANY, "workflow"), "x-afctl-ref") in workflow
    tool = {(a.path, a.keyword) for a in schema_annotations("Tool")}
    assert (("spec", "agent"), "x-afctl-ref") in tool


def test_schema_refs_are_never_fetched():
    calls = []

    def retriever(uri: str) -> Any:
        calls.append(uri)
        raise ValueError("no")

    hostile = {"properties": {"a": {"$ref": "https://example.invalid/schema.json"}}}
    with pytest.raises(jsonschema_rs.ValidationError):
        jsonschema_rs.validator_for(hostile, retriever=retriever)
    assert calls == ["https://example.invalid/schema.json"]
    with pytest.raises(ValueError, match="does not fetch"):
        schemas._refuse_retrieval("https://example.invalid/x.json")


def test_schema_hash_is_stable():
    assert schemas.schema_hash() == schemas.schema_hash()
    assert len(schemas.schema_hash()) == 16

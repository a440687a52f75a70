from __future__ import annotations

import pytest

from afctl.errors import UsageError
from afctl.manifests.explain import explain


def field(explanation, name):
    return next(f for f in explanation.fields if f.name == name)


def test_a_kind_lists_its_top_level_fields():
    result = explain("Agent")
    assert result.kind == "Agent" and result.path == ()
    assert [f.name for f in result.fields] == ["apiVersion", "kind", "metadata", "spec"]
    assert all(f.required for f in result.fields)


def test_a_field_path_follows_refs_and_lists():
    result = explain("agent.spec.tools")
    assert result.type == "[]string"
    assert "builtin/read_file" in result.description
    guardrails = explain("Agent.spec.guardrails.input")
    assert guardrails.type == "[]Object" and guardrails.discriminator == "type"
    assert field(guardrails, "pattern").only_for == ("deny_regex", "allow_regex")
    assert field(guardrails, "action").only_for == ()  # common to every variant


def test_variants_mark_their_own_required_fields():
    tool = explain("Tool.spec")
    entrypoint = field(tool, "entrypoint")
    assert entrypoint.required and entrypoint.only_for == ("python",)
    assert field(tool, "type").required


def test_enums_defaults_and_maps():
    memory = explain("Agent.spec.memory.type")
    assert memory.choices == ("none", "session") and memory.default == "none"
    outputs = explain("Workflow.spec.outputs")
    assert outputs.type == "map[string]string"
    assert explain("Workflow.spec.outputs.anything").type == "string"


def test_plurals_and_case_are_accepted():
    assert explain("knowledgepacks").kind == "KnowledgePack"


def test_recursive_lists_nested_fields():
    result = explain("Model.spec", recursive=True)
    params = field(result, "params")
    assert "temperature" in [f.name for f in params.children]


@pytest.mark.parametrize(
    ("target", "hint"),
    [
        ("Agnet", 'did you mean "Agent"?'),
        ("Agent.spec.tols", 'did you mean "tools"?'),
        ("Agent.spec.model.x", "has no fields"),
    ],
)
def test_unknown_targets_are_usage_errors_with_hints(target, hint):
    with pytest.raises(UsageError) as caught:
        explain(target)
    assert hint in (caught.value.hint or "")


def test_every_kind_and_field_explains():
    from afctl.manifests.kinds import KINDS

    def walk(prefix, fields, depth):
        for info in fields:
            path = f"{prefix}.{info.name}"
            assert explain(path).description, path
            if depth and info.children:
                walk(path, info.children, depth - 1)

    for kind in KINDS:
        walk(kind, explain(kind, recursive=True).fields, 4)

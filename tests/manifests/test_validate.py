from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import afctl
from afctl.manifests.cache import ValidationCache
from afctl.manifests.validate import validate_paths
from afctl.testing import invoke, write_repo

AGENT = """\
apiVersion: afctl/v1
kind: Agent
metadata:
  name: support
  labels: {team: cx}
spec:
  model: openai/gpt-4.1-mini
  instructions: |
    You help customers of {{ vars.company }}.
  tools: [lookup_order, builtin/read_file]
  knowledge: [support-docs]
  handoffs: [billing]
  guardrails:
    input:  [{type: max_length, max: 4000}, {type: deny_regex, pattern: "(?i)ignore previous"}]
    output: [{type: pii, action: redact}]
  memory: {type: session, max_messages: 40}
  limits: {max_turns: 8, timeout_s: 120, max_cost_usd: 0.20}
  params: {temperature: 0.2, max_tokens: 800}
"""

SUPPORTING = """\
apiVersion: afctl/v1
kind: Agent
metadata: {name: billing}
spec: {model: fast}
---
apiVersion: afctl/v1
kind: Model
metadata: {name: fast}
spec:
  provider: openai
  model: gpt-4.1-mini
  api_key_env: OPENAI_API_KEY
  pricing: {input_per_mtok: 0.4, output_per_mtok: 1.6}
  fallback: [anthropic/claude-haiku-4-5]
---
apiVersion: afctl/v1
kind: Tool
metadata: {name: lookup_order, description: Look up an order}
spec:
  type: python
  entrypoint: tools.orders:lookup_order
  approval: {when: "args.order_id == '0'"}
---
apiVersion: afctl/v1
kind: KnowledgePack
metadata: {name: support-docs}
spec:
  sources: [{path: "docs/**/*.md"}]
---
apiVersion: afctl/v1
kind: Workflow
metadata: {name: triage}
spec:
  inputs: {type: object, properties: {ticket: {type: string}}}
  steps:
    - {id: classify, agent: support, input: "{{ inputs.ticket }}"}
    - id: bill
      agent: billing
      needs: [classify]
      when: "steps.classify.output.category == 'billing'"
    - {id: notify, tool: lookup_order, needs_any: [bill], input: {order_id: "1"}}
  outputs: {answer: "{{ steps.bill.output }}"}
  triggers:
    - {type: schedule, cron: "0 9 * * 1-5", timezone: Europe/Paris}
    - {type: webhook, path: /hooks/tickets, secret: "${env:HOOK_SECRET}"}
---
apiVersion: afctl/v1
kind: EvalSuite
metadata: {name: support-regression}
spec:
  target: {agent: support}
  matrix: {model: [openai/gpt-4.1-mini, anthropic/claude-haiku-4-5], temperature: [0, 0.7]}
  defaults: {assert: [{type: latency, max_ms: 8000}]}
  cases:
    - input: "where is order 123?"
      assert:
        - {type: contains, value: "shipped"}
        - {type: tool_called, name: lookup_order, args: {order_id: "123"}}
        - {type: not_regex, pattern: "(?i)sorry"}
    - dataset: cases.jsonl
  repeat: 3
  thresholds: {pass_rate: 0.9}
"""


def run(root: Path, *paths: str):
    result, _ = validate_paths([str(root / p) for p in paths] if paths else [str(root)])
    return result


def only(result, code: str):
    found = [d for d in result.diagnostics if d.code == code]
    assert found, [f"{d.code}: {d.summary}" for d in result.diagnostics]
    return found


def test_a_complete_repository_is_valid(tmp_path):
    write_repo(tmp_path, {"agents/support.yaml": AGENT, "more.yaml": SUPPORTING})
    result = run(tmp_path)
    assert result.diagnostics == [], [d.summary for d in result.diagnostics]
    assert len(result.resources) == 7


def test_the_starter_template_is_valid(tmp_path):
    from afctl.scaffold import init_project

    init_project(tmp_path / "repo")
    result = run(tmp_path / "repo")
    assert result.valid and result.diagnostics == []
    assert {r.kind for r in result.resources} == {
        "Model", "Agent", "Tool", "Workflow", "KnowledgePack", "EvalSuite"
    }  # fmt: skip


def test_unknown_field_points_at_the_key_with_a_suggestion(tmp_path):
    write_repo(tmp_path, {"a.yaml": AGENT.replace("instructions:", "instuctions:")})
    (diagnostic,) = only(run(tmp_path, "a.yaml"), "schema.unknown-field")
    assert (diagnostic.file, diagnostic.line, diagnostic.col) == (str(tmp_path / "a.yaml"), 8, 3)
    assert diagnostic.pointer == "/spec/instuctions"
    assert diagnostic.hint == 'did you mean "instructions"?'


def test_schema_violations_carry_pointer_and_position(tmp_path):
    text = AGENT.replace("max_turns: 8", 'max_turns: "8"').replace("type: session", "type: sesion")
    write_repo(tmp_path, {"a.yaml": text})
    result = run(tmp_path, "a.yaml")
    (wrong_type,) = only(result, "schema.type")
    assert wrong_type.pointer == "/spec/limits/max_turns"
    assert (wrong_type.line, wrong_type.col) == (17, 23)
    (wrong_enum,) = only(result, "schema.enum")
    assert wrong_enum.hint == 'did you mean "session"?'


def test_line_numbers_are_absolute_in_multi_document_files(tmp_path):
    text = SUPPORTING.replace("entrypoint: tools.orders:lookup_order", "entrypoint: tools.orders")
    write_repo(tmp_path, {"m.yaml": text})
    (diagnostic,) = only(run(tmp_path, "m.yaml"), "schema.pattern")
    assert diagnostic.line == 21 and diagnostic.document == 2
    assert "package.module:function" in (diagnostic.hint or "")


@pytest.mark.parametrize(
    ("document", "code", "hint_part"),
    [
        ("kind: Agent\nmetadata: {name: a}\nspec: {model: local/echo}\n", "manifest.api-version", "afctl/v1"),
        ("apiVersion: afctl/v2\nkind: Agent\nmetadata: {name: a}\nspec: {model: local/echo}\n", "manifest.api-version", "afctl/v1"),
        ("apiVersion: afctl/v1\nmetadata: {name: a}\n", "manifest.kind", "Agent"),
        ("apiVersion: afctl/v1\nkind: Agnet\nmetadata: {name: a}\n", "manifest.kind", 'did you mean "Agent"'),
        ("apiVersion: afctl/v1\nkind: agent\nmetadata: {name: a}\n", "manifest.kind", 'did you mean "Agent"'),
        ("- just\n- a list\n", "manifest.not-mapping", "apiVersion"),
        ("apiVersion: apps/v1\nkind: Deployment\n", "manifest.api-version", ".afctlignore"),
    ],
)  # fmt: skip
def test_envelope_problems(tmp_path, document, code, hint_part):
    write_repo(tmp_path, {"x.yaml": document})
    diagnostics = only(run(tmp_path, "x.yaml"), code)
    assert hint_part in (diagnostics[0].hint or "")


def test_model_strings_need_a_known_provider(tmp_path):
    write_repo(
        tmp_path,
        {
            "a.yaml": """\
            apiVersion: afctl/v1
            kind: Agent
            metadata: {name: a}
            spec: {model: opnai/gpt-4.1}
            ---
            apiVersion: afctl/v1
            kind: Agent
            metadata: {name: b}
            spec: {model: gpt-4.1}
            ---
            apiVersion: afctl/v1
            kind: Agent
            metadata: {name: c}
            spec: {model: local/ech}
            """
        },
    )
    result = run(tmp_path)
    (provider,) = only(result, "model.provider")
    assert provider.hint == 'did you mean "openai"?'
    (dangling,) = only(result, "ref.dangling")
    assert 'Model "gpt-4.1"' in dangling.summary and "provider/model" in (dangling.hint or "")
    (local,) = only(result, "model.name")
    assert local.hint == 'did you mean "echo"?'


def test_dangling_references_across_files(tmp_path):
    write_repo(tmp_path, {"agents/support.yaml": AGENT})
    result = run(tmp_path)
    missing = {
        d.summary.split(" refers to ")[1].split(",")[0] for d in only(result, "ref.dangling")
    }
    assert missing == {'Tool "lookup_order"', 'KnowledgePack "support-docs"', 'Agent "billing"'}
    write_repo(tmp_path, {"rest.yaml": SUPPORTING})
    assert run(tmp_path).valid


def test_duplicates_are_reported_at_every_later_definition(tmp_path):
    write_repo(tmp_path, {"a.yaml": AGENT, "b.yaml": AGENT, "c.yaml": AGENT, "d.yaml": SUPPORTING})
    duplicates = only(run(tmp_path), "ref.duplicate")
    assert [Path(d.file or "").name for d in duplicates] == ["b.yaml", "c.yaml"]
    assert all("a.yaml:4" in d.summary for d in duplicates)


def test_workflow_step_graph(tmp_path):
    write_repo(
        tmp_path,
        {
            "w.yaml": """\
            apiVersion: afctl/v1
            kind: Workflow
            metadata: {name: w}
            spec:
              steps:
                - {id: a, tool: builtin/read_file, needs: [c]}
                - {id: b, tool: builtin/read_file, needs: [a, missing]}
                - {id: c, tool: builtin/read_file, needs: [b], on_error: nowhere}
                - {id: a, tool: builtin/read_file}
                - {id: d, tool: builtin/read_file, agent: x}
            """
        },
    )
    result = run(tmp_path)
    (cycle,) = only(result, "workflow.cycle")
    assert "a → c → b → a" in cycle.summary
    assert "missing" in only(result, "workflow.needs")[0].summary
    assert only(result, "workflow.on-error")
    assert only(result, "workflow.duplicate-step")
    (choice,) = only(result, "schema.choice")
    assert "exactly one of" in choice.summary


def test_workflows_running_each_other(tmp_path):
    def workflow(name: str, calls: str) -> str:
        return (
            f"apiVersion: afctl/v1\nkind: Workflow\nmetadata: {{name: {name}}}\n"
            f"spec:\n  steps:\n    - {{id: s, workflow: {calls}}}\n"
        )

    write_repo(tmp_path, {"a.yaml": workflow("a", "b"), "b.yaml": workflow("b", "a")})
    (cycle,) = only(run(tmp_path), "ref.cycle")
    assert "a → b → a" in cycle.summary


def test_templates_expressions_and_regexes_are_checked(tmp_path):
    text = AGENT.replace("{{ vars.company }}.", "{{ vars.company }.").replace(
        "(?i)ignore previous", "(?i)ignore (previous"
    )
    workflow = SUPPORTING.replace(
        "steps.classify.output.category == 'billing'", "steps.classify.output.category = 'x'"
    ).replace("needs_any: [bill]", "needs_any: [bill], when: \"__import__('os')\"")
    write_repo(tmp_path, {"a.yaml": text, "b.yaml": workflow})
    result = run(tmp_path)
    (template,) = only(result, "template.syntax")
    assert template.line == 9  # the line inside the block scalar, not the `|` line
    (regex,) = only(result, "regex.invalid")
    assert regex.pointer == "/spec/guardrails/input/1/pattern"
    expressions = only(result, "expr.invalid")
    assert {e.hint for e in expressions} >= {"use == to compare"}
    assert any('unknown function "__import__"' in e.summary for e in expressions)


def test_expression_names_are_checked_where_the_schema_lists_them(tmp_path):
    workflow = SUPPORTING.replace(
        "steps.classify.output.category == 'billing'", "stpes.classify.output == 'x'"
    )
    write_repo(tmp_path, {"a.yaml": AGENT, "b.yaml": workflow})
    (expression,) = only(run(tmp_path), "expr.invalid")
    assert expression.hint == 'did you mean "steps"?'


def test_interpolation_references_must_be_well_formed(tmp_path):
    text = SUPPORTING.replace("${env:HOOK_SECRET}", "${env:HOOK-SECRET}").replace(
        "api_key_env: OPENAI_API_KEY",
        "headers: {X-Key: '${secret:KEY}', Y: '${HOME}', Z: '$${ok}'}",
    )
    write_repo(tmp_path, {"a.yaml": AGENT, "b.yaml": text})
    problems = only(run(tmp_path), "ref.malformed")
    assert len(problems) == 3
    assert any("${env:HOME}" in (p.hint or "") for p in problems)


def test_embedded_json_schemas_are_checked_and_never_fetch(tmp_path):
    text = AGENT + (
        "  output_schema:\n"
        "    type: objekt\n"
        "    properties: {a: {$ref: 'https://example.com/x.json'}}\n"
    )
    write_repo(tmp_path, {"a.yaml": text, "b.yaml": SUPPORTING})
    result = run(tmp_path)
    (remote,) = only(result, "jsonschema.remote-ref")
    assert remote.pointer == "/spec/output_schema/properties/a/$ref"
    unknown_dialect = AGENT + "  output_schema: {$schema: 'https://example.com/meta'}\n"
    write_repo(tmp_path, {"a.yaml": unknown_dialect})
    assert only(run(tmp_path), "jsonschema.unknown-dialect")
    invalid = AGENT + "  output_schema: {type: objekt}\n"
    write_repo(tmp_path, {"a.yaml": invalid})
    assert only(run(tmp_path), "jsonschema.invalid")[0].pointer == "/spec/output_schema/type"


def test_unreadable_and_oversized_files(tmp_path):
    from afctl.manifests.limits import MAX_FILE_BYTES

    write_repo(tmp_path, {"big.yaml": "a: " + "x" * (MAX_FILE_BYTES + 10) + "\n"})
    (tmp_path / "link.yaml").symlink_to(tmp_path / "gone.yaml")
    result = run(tmp_path)
    assert only(result, "yaml.too-large")
    assert only(result, "io.read")


def test_load_returns_manifests_or_raises_manifest_error(tmp_path):
    write_repo(tmp_path, {"a.yaml": AGENT, "b.yaml": SUPPORTING})
    loaded = afctl.load(tmp_path)
    agent = loaded.get("Agent", "support")
    assert agent is not None and agent.spec["model"] == "openai/gpt-4.1-mini"
    assert agent.ref == "agent/support" and agent.labels == {"team": "cx"}
    assert [m.kind for m in loaded][:3] == ["Model", "Agent", "Agent"]
    write_repo(tmp_path, {"a.yaml": AGENT.replace("gpt-4.1-mini", "gpt 4")})
    with pytest.raises(afctl.ManifestError) as caught:
        afctl.load(tmp_path)
    assert caught.value.exit_code == 3
    assert caught.value.diagnostics


# -- the cache --------------------------------------------------------------------------------


def _validate_cached(root: Path, cache_file: Path):
    cache = ValidationCache(cache_file, "test-stamp")
    result, parsed = validate_paths([str(root)], cache)
    return result, parsed


def test_cache_reuses_results_and_notices_changes(tmp_path):
    repo = write_repo(tmp_path / "repo", {"a.yaml": AGENT, "b.yaml": SUPPORTING})
    cache_file = tmp_path / "cache.json"
    first, parsed = _validate_cached(repo, cache_file)
    assert first.cached_files == 0 and len(parsed) == 7
    second, parsed = _validate_cached(repo, cache_file)
    assert second.cached_files == 2 and parsed == []
    assert second.diagnostics == first.diagnostics and second.resources == first.resources
    write_repo(repo, {"a.yaml": AGENT.replace("max_turns: 8", "max_turns: 0")})
    third, _ = _validate_cached(repo, cache_file)
    assert third.cached_files == 1
    assert [d.code for d in third.diagnostics] == ["schema.range"]
    # cross-file checks always run: removing a file surfaces dangling references
    (repo / "b.yaml").unlink()
    fourth, _ = _validate_cached(repo, cache_file)
    assert fourth.cached_files == 1 and any(d.code == "ref.dangling" for d in fourth.diagnostics)


def test_an_unchanged_run_is_reused_whole_with_its_diagnostics(tmp_path):
    bad = AGENT.replace("max_turns: 8", "max_turns: 0")
    repo = write_repo(tmp_path / "repo", {"a.yaml": bad, "b.yaml": SUPPORTING})
    cache_file = tmp_path / "cache.json"
    first, _ = _validate_cached(repo, cache_file)
    (cache_file.parent / "cache.json").unlink()  # only the whole-run entry is left
    second, parsed = _validate_cached(repo, cache_file)
    assert parsed == [] and second.cached_files == 2
    assert second.diagnostics == first.diagnostics and second.resources == first.resources
    assert second.sources == first.sources and second.to_dict() == first.to_dict()


def test_cached_diagnostics_follow_the_file_they_are_in(tmp_path):
    cache_file = tmp_path / "cache.json"
    bad = AGENT.replace("max_turns: 8", "max_turns: 0")
    repo = write_repo(tmp_path / "one", {"a.yaml": bad, "b.yaml": SUPPORTING})
    _validate_cached(repo, cache_file)
    other = write_repo(tmp_path / "two", {"renamed.yaml": bad, "b.yaml": SUPPORTING})
    result, _ = _validate_cached(other, cache_file)
    assert result.cached_files == 2
    assert [Path(d.file or "").name for d in result.diagnostics] == ["renamed.yaml"]
    assert "renamed.yaml" in next(iter(result.sources))


def test_a_corrupt_or_foreign_cache_is_ignored(tmp_path):
    repo = write_repo(tmp_path / "repo", {"a.yaml": AGENT, "b.yaml": SUPPORTING})
    cache_file = tmp_path / "cache.json"
    cache_file.write_text("{not json")
    result, _ = _validate_cached(repo, cache_file)
    assert result.valid and result.cached_files == 0
    assert json.loads(cache_file.read_text())["stamp"] == "test-stamp"
    other = ValidationCache(cache_file, "another-version")
    result, _ = validate_paths([str(repo)], other)
    assert result.cached_files == 0


# -- order never changes the result -----------------------------------------------------------

DOCUMENTS = [AGENT.replace("max_turns: 8", "max_turns: -1"), *SUPPORTING.split("---\n")]


def _comparable(result):
    return sorted((d.code, d.summary, d.pointer, d.hint) for d in result.diagnostics)


@given(st.permutations(range(len(DOCUMENTS))), st.randoms())
def test_order_of_files_and_documents_never_changes_validation(tmp_path_factory, order, rnd):
    root = tmp_path_factory.mktemp("order")
    for index in order:
        write_repo(root, {f"separate/{index}.yaml": DOCUMENTS[index]})
    separate = run(root / "separate")
    combined = "---\n".join(DOCUMENTS[i] for i in order)
    write_repo(root, {"combined/all.yaml": combined})
    together = run(root / "combined")
    assert _comparable(separate) == _comparable(together)
    paths = [str(root / "separate" / f"{i}.yaml") for i in range(len(DOCUMENTS))]
    random.Random(rnd.random()).shuffle(paths)
    shuffled, _ = validate_paths(paths)
    assert shuffled.diagnostics == separate.diagnostics


def test_progress_is_reported_per_file(tmp_path):
    write_repo(tmp_path, {"a.yaml": AGENT, "b.yaml": SUPPORTING, "c/d.yaml": AGENT})
    seen: list[tuple[int, int]] = []
    validate_paths([str(tmp_path)], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_a_model_name_a_provider_is_not_known_to_offer_is_warned_about(tmp_path):
    """Issue 15: openai/gpt-4.1-mni validated silently (and was priced as gpt-4.1)."""
    from afctl.providers.pricing import builtin_price

    write_repo(tmp_path, {"a.yaml": (
        "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: openai/gpt-4.1-mni}\n"
    )})  # fmt: skip
    result = invoke(["validate", "-f", "."], cwd=tmp_path)
    assert result.exit_code == 0 and 'did you mean "gpt-4.1-mini"?' in result.output
    assert builtin_price("openai", "gpt-4.1-mni") is None
    assert builtin_price("openai", "gpt-4.1-2025-04-14") == builtin_price("openai", "gpt-4.1")

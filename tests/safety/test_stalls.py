"""Stalls and memory bombs (issue 14 #8, #9, #10): user regexes run on RE2, templates and
expressions have budgets that hold however values are built or shared."""

from __future__ import annotations

import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from jinja2 import TemplateError

from afctl.context import Context
from afctl.safety.expr import ExpressionError, evaluate
from afctl.safety.templates import TemplateFailure, render
from afctl.testing import invoke, write_repo
from tests.safety.hostile_payloads import (
    CATASTROPHIC_REGEX,
    EXPRESSION_BOMBS,
    REDOS_TEXT,
    TEMPLATE_BOMBS,
)

HANG = 120.0
"""Not a timing assertion: a call that has not returned by then is hung (the red team saw
these run for hours); a correct one returns in milliseconds."""


def finishes(call: Callable[[], Any]) -> Any:
    """What `call()` returns (or raises), failing the test instead of hanging it."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed back to the test below
            outcome["error"] = exc

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(HANG)
    assert not worker.is_alive(), "hung"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def test_matches_runs_in_linear_time_on_a_catastrophic_pattern():
    source = f"matches(text, '{CATASTROPHIC_REGEX}')"
    assert finishes(lambda: evaluate(source, {"text": REDOS_TEXT})) is False
    assert finishes(lambda: evaluate(source, {"text": "aaaa"})) is True


def test_patterns_re2_cannot_run_are_refused_at_validate(tmp_path):
    repo = write_repo(
        tmp_path,
        {
            "a.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n"
                "  model: local/echo\n  guardrails:\n"
                "    input: [{type: deny_regex, pattern: '(a)\\1'}]\n"
            )
        },
    )
    result = invoke(["validate", "-f", "."], cwd=repo)
    assert result.exit_code == 3
    assert "no backreferences or lookaround" in result.output


def workflow_repo(tmp_path):
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "a.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: echo}\n"
                "spec:\n  model: local/echo\n  guardrails:\n"
                f"    input: [{{type: deny_regex, pattern: '{CATASTROPHIC_REGEX}'}}]\n"
                f"    output: [{{type: allow_regex, pattern: '{CATASTROPHIC_REGEX}', action: warn}}]\n"
            ),
            "w.yaml": (
                "apiVersion: afctl/v1\nkind: Workflow\nmetadata: {name: w}\nspec:\n"
                "  timeout_s: 5\n"
                "  inputs: {type: object, properties: {text: {type: string}}}\n"
                "  steps:\n"
                "    - id: check\n      agent: echo\n"
                f"      when: \"matches(inputs.text, '{CATASTROPHIC_REGEX}') or true\"\n"
                "      input: '{{ inputs.text }}'\n"
                "  outputs: {said: '{{ steps.check.output }}'}\n"
            ),
            "e.yaml": (
                "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: e}\nspec:\n"
                "  target: {agent: echo}\n"
                f"  cases: [{{input: '{REDOS_TEXT}', assert: [{{type: not_regex, pattern: '{CATASTROPHIC_REGEX}'}}]}}]\n"
            ),
        },
    )


def test_conditions_guardrails_and_assertions_with_the_pattern_finish(tmp_path):
    repo = workflow_repo(tmp_path)
    result = finishes(
        lambda: Context(workspace=repo).run_workflow(
            "workflow/w", {"text": REDOS_TEXT}, paths=[str(repo)]
        )
    )
    assert result.ok and result.outputs == {"said": REDOS_TEXT}
    (evaluated,) = finishes(lambda: Context(workspace=repo).evaluate([str(repo)]))
    assert evaluated.passed


@pytest.mark.parametrize("name", sorted(TEMPLATE_BOMBS))
def test_template_bombs_stop_within_their_budget(name):
    tracemalloc.start()
    try:
        with pytest.raises((TemplateError, TemplateFailure)) as stopped:
            finishes(lambda: render(TEMPLATE_BOMBS[name], {}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 64 * 1024 * 1024, f"{name}: {peak / 1e6:.0f} MB"
    assert "template" in str(stopped.value) or "Error" in str(stopped.value)


def test_ordinary_templates_still_render():
    text = (
        "{% for x in items %}{{ x }},{% endfor %} {{ '{:,}'.format(1234567) }} {{ 'a' ~ 'b' }} "
        "{{ [1, 2]|join('-') }} {{ 'Hello %s' % 'w' }} {{ 'abc'|replace('b', 'x') }} "
        "{{ 'x'|center(5) }}|{{ 'a\nb'|indent(2) }} {{ {'k': [1, 2]}['k'][1] }} {{ 2 ** 10 }}"
    )
    assert render(text, {"items": [1, 2, 3]}) == (
        "1,2,3, 1,234,567 ab 1-2 Hello w axc   x  |a\n  b 2 1024"
    )


@pytest.mark.parametrize("source", EXPRESSION_BOMBS)
def test_expression_bombs_through_shared_structure_are_refused(source):
    tracemalloc.start()
    try:
        with pytest.raises(ExpressionError, match="longer than"):
            finishes(lambda: evaluate(source, {}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024


def test_literals_may_gather_large_inputs():
    big = "y" * 60_000
    assert evaluate("len([a, a, a])", {"a": big}) == 3
    assert evaluate("{'x': a, 'y': a}['x'] == a", {"a": big}) is True

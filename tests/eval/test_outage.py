"""An eval tells an outage from a regression (issue 15 #3): a case whose run could not answer
is an error (its own column, count, JUnit element and exit code), and no assertion about the
answer passes on a run that gave none."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from afctl.fake_llm import Reply
from afctl.testing import invoke, write_repo
from tests.eval.test_reports import SCHEMA

SUITE = (
    "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\nspec:\n"
    "  target: {agent: a}\n  cases:\n"
    "    - {id: one, input: hi, assert: [{type: not_contains, value: sorry}]}\n"
    "    - {id: two, input: hello, assert: [{type: contains, value: hello}]}\n"
    "THRESHOLDS"
)


def repo_for(tmp_path: Path, url: str, thresholds: str = "") -> Path:
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "m.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: main}\n"
                f"spec: {{provider: openai, model: m, base_url: '{url}/v1', "
                "api_key_env: TEST_KEY, max_retries: 0, timeout_s: 5}\n"
            ),
            "a.yaml": "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: main}\n",
            "s.yaml": SUITE.replace("THRESHOLDS", thresholds),
        },
    )


def test_a_model_server_that_is_down_is_an_error_not_a_regression(
    tmp_path, llm_server, monkeypatch
):
    monkeypatch.setenv("TEST_KEY", "k-123456")
    llm_server.default = Reply(status=503)
    repo = repo_for(tmp_path, llm_server.url)
    result = invoke(["eval", ".", "--no-cache", "--json", "e.json", "--junit", "j.xml",
                     "--html", "r.html"], cwd=repo)  # fmt: skip
    assert result.exit_code == 1, result.output  # not 5: nothing was judged
    assert "ERROR suite s: 0/0 cases passed" in result.stdout and "2 could not run" in result.stdout
    assert result.stdout.count("ERROR") >= 3
    (suite,) = json.loads((repo / "e.json").read_text())
    assert suite["verdict"] == "error" and suite["errors"] == 2
    assert [c["outcome"] for c in suite["cases"]] == ["error", "error"]
    assert all(c["assertions"] == [] and c["score"] == 0 for c in suite["cases"])
    junit = (repo / "j.xml").read_text()
    SCHEMA.validate(junit)
    root = ET.fromstring(junit)
    assert (root.get("errors"), root.get("failures")) == ("2", "0")
    assert len(root.findall(".//error")) == 2 and not root.findall(".//failure")
    assert "ERROR" in (repo / "r.html").read_text()


def test_a_tolerated_error_rate_judges_the_cases_that_ran(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "k-123456")
    llm_server.push(Reply(status=503), Reply(text="hello there"))
    repo = repo_for(
        tmp_path, llm_server.url, "  concurrency: 1\n  thresholds: {max_error_rate: 0.5}\n"
    )
    result = invoke(["eval", ".", "--no-cache", "-o", "json"], cwd=repo)
    (suite,) = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert suite["errors"] == 1 and suite["pass_rate"] == 1.0 and suite["verdict"] == "pass"


def test_no_assertion_passes_on_a_run_that_gave_no_answer(tmp_path):
    repo = write_repo(
        tmp_path,
        {
            "a.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\n"
                "spec: {model: local/echo, limits: {max_tokens: 1}}\n"
            ),
            "s.yaml": (
                "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\nspec:\n"
                "  target: {agent: a}\n  cases:\n"
                "    - {id: one, input: hi, assert: [{type: not_contains, value: sorry}, "
                "{type: not_regex, pattern: x}, {type: latency, max_ms: 100000}]}\n"
            ),
        },
    )
    result = invoke(["eval", ".", "-o", "json"], cwd=repo)
    (suite,) = json.loads(result.stdout)
    (case,) = suite["cases"]
    assert result.exit_code == 5 and case["outcome"] == "fail", result.output
    checks = {a["type"]: a for a in case["assertions"]}
    assert not checks["not_contains"]["passed"] and not checks["not_regex"]["passed"]
    assert "there is no answer to check" in checks["not_contains"]["reason"]
    assert checks["latency"]["passed"]  # what does not look at the answer is still judged


def test_a_not_assertion_says_what_it_found():
    from afctl.eval.assertions import Outcome, check

    outcome = Outcome("hello world", "succeeded", 1.0, 0.0, 3)
    checked = check({"type": "not_contains", "value": "hello"}, outcome)
    assert not checked.passed and checked.reason == 'contains "hello" held, and must not'


def test_the_expression_assertion_knows_every_documented_name(tmp_path):
    """Issue 15 #14: status, latency_ms, tokens, cost_usd, tools, handoffs validate and work."""
    expr = ("status == 'succeeded' and latency_ms >= 0 and tokens > 0 and cost_usd == 0 "
            "and len(tools) == 0 and len(handoffs) == 0 and output == 'hi'")  # fmt: skip
    repo = write_repo(
        tmp_path,
        {
            "a.yaml": "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: local/echo}\n",
            "s.yaml": (
                "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\nspec:\n"
                "  target: {agent: a}\n  cases:\n"
                f'    - {{id: one, input: hi, assert: [{{type: expression, expr: "{expr}"}}, '
                "{type: not_tool_called, tool: lookup, name: no lookups}]}\n"
            ),
        },
    )
    assert invoke(["validate", "-f", "."], cwd=repo).exit_code == 0
    result = invoke(["eval", ".", "-o", "json"], cwd=repo)
    (suite,) = json.loads(result.stdout)
    assert result.exit_code == 0, suite["cases"][0]["assertions"]
    assert [a["name"] for a in suite["cases"][0]["assertions"]] == ["expression", "no lookups"]


def test_explain_says_when_a_field_is_required():
    from afctl.manifests.explain import explain

    tool = {f.name: f for f in explain("Tool.spec").fields}
    assert not tool["url"].required and tool["url"].required_for == ("http",)
    assert tool["entrypoint"].required
    checks = {f.name: f for f in explain("EvalSuite.spec.cases.assert", recursive=True).fields}
    assert not checks["name"].required and not checks["name"].required_for


def test_eval_takes_f_like_every_command_and_a_blocked_case_prints_no_failure(tmp_path):
    repo = write_repo(
        tmp_path,
        {
            "a.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec:\n  model: local/echo\n"
                "  guardrails: {input: [{type: deny_regex, pattern: forbidden}]}\n"
            ),
            "s.yaml": (
                "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\nspec:\n"
                "  target: {agent: a}\n  cases:\n"
                "    - {id: blocked, input: forbidden words, assert: [{type: guardrail_blocked}]}\n"
            ),
        },
    )
    result = invoke(["eval", "-f", "."], cwd=repo)
    assert result.exit_code == 0, result.output
    assert "run failed" not in result.stderr and "blocked" not in result.stderr
    assert invoke(["eval"], cwd=repo).exit_code == 64

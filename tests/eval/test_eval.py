"""afctl eval: suites, datasets, assertions, concurrency, gates and reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from afctl.console import Console
from afctl.context import Context
from afctl.eval.assertions import Outcome, check
from afctl.testing import invoke, write_repo

TOOLS_PY = '''
import asyncio

STATE = {"now": 0, "peak": 0}


async def busy(text: str) -> str:
    """Wait a little, counting how many calls run at once.

    Args:
        text: Anything.
    """
    STATE["now"] += 1
    STATE["peak"] = max(STATE["peak"], STATE["now"])
    await asyncio.sleep(0.05)
    STATE["now"] -= 1
    return f"peak {STATE['peak']}"
'''


def repo_with(tmp_path: Path, suite: str, files: dict[str, str] | None = None) -> Path:
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "helpers/__init__.py": "",
            "helpers/tools.py": TOOLS_PY,
            "agent.yaml": (
                "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: busy}\n"
                "spec: {type: python, entrypoint: 'helpers.tools:busy'}\n---\n"
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
                "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
                "      - contains: busy\n        tool_calls: [{name: busy, arguments: {text: x}}]\n"
                "      - after_tool: busy\n        reply: '{{ tool_result }}'\n"
                "      - contains: json\n        reply: '{\"status\": \"shipped\", \"items\": [1, 2]}'\n"
                "    default: 'echo: {{ input }}'\n---\n"
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: bot}\n"
                "spec: {model: script, instructions: Help., tools: [busy]}\n"
            ),
            "evals/suite.yaml": suite,
            **(files or {}),
        },
    )  # fmt: skip


def suite(cases: str, extra: str = "") -> str:
    return (
        "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: smoke}\n"
        f"spec:\n  target: {{agent: bot}}\n{extra}  cases:\n{cases}"
    )


def test_cases_inline_and_from_datasets_run_as_logged_runs(tmp_path):
    cases = (
        "    - {id: hello, input: 'hi {{ vars.who }}', vars: {who: Ann}, "
        "assert: [{type: equals, value: 'echo: hi Ann'}]}\n"
        "    - {dataset: cases.jsonl}\n"
        "    - {dataset: cases.csv, id: csv}\n"
        "    - {dataset: ../data/more.yaml}\n"  # YAML datasets live outside manifest folders
    )
    repo = repo_with(
        tmp_path,
        suite(cases, "  defaults: {assert: [{type: starts_with, value: 'echo:'}]}\n"),
        {
            "evals/cases.jsonl": '{"id": "j1", "input": "one", "expected": "echo: one"}\n'
            '{"input": "two", "expected": "echo: 2"}\n',
            "evals/cases.csv": "input,expected,lang\nthree,echo: three,en\n",
            "data/more.yaml": "- {input: four}\n",
        },
    )
    (result,) = Context(workspace=repo).evaluate([str(repo / "evals"), str(repo / "agent.yaml")])
    outcome = {c.case_id: c.passed for c in result.cases}
    assert outcome == {
        "hello": True,
        "cases-1": True,
        "cases-2": False,
        "csv-1": True,
        "more-1": True,
    }
    assert result.pass_rate == 0.8 and not result.passed
    failed = next(c for c in result.cases if c.case_id == "cases-2")
    assert [a.passed for a in failed.assertions] == [True, False] and failed.score == 0.5
    with Context(workspace=repo).prompt_log() as log:
        runs = log.conn.execute(
            "SELECT count(*) FROM runs WHERE eval_id = ?", [result.eval_id]
        ).fetchone()
    assert runs[0] == 5  # each case is an ordinary, replayable run


def test_concurrency_never_exceeds_the_limit(tmp_path):
    cases = "".join(f"    - {{id: c{i}, input: busy {i}}}\n" for i in range(12))
    repo = repo_with(tmp_path, suite(cases, "  concurrency: 3\n"))
    told: list[tuple[int, int]] = []

    class Counting(Console):
        def progress(self, done: int, total: int, label: str) -> None:
            told.append((done, total))

    (result,) = Context(workspace=repo, console=Counting()).evaluate([str(repo)])
    peaks = [int(c.output.split()[1]) for c in result.cases if c.output]
    assert len(peaks) == 12 and max(peaks) == 3
    assert told == [(n, 12) for n in range(1, 13)]  # progress as cases finish


def test_the_cli_gates_and_writes_json(tmp_path):
    cases = (
        "    - {id: ok, input: a, assert: [{type: contains, value: echo}]}\n"
        "    - {id: bad, input: b, assert: [{type: contains, value: nope}]}\n"
    )
    repo = repo_with(tmp_path, suite(cases, "  thresholds: {pass_rate: 0.5}\n"))
    passed = invoke(["eval", ".", "--json", "out.json"], cwd=repo)
    assert passed.exit_code == 0, passed.stderr
    assert "PASS suite smoke: 1/2 cases passed (50%, required 50%)" in passed.stdout
    assert "'nope' is not in the output" in passed.stdout
    report = json.loads((repo / "out.json").read_text())
    assert report[0]["schema"] == "afctl.eval/v1" and report[0]["pass_rate"] == 0.5
    write_repo(repo, {"evals/suite.yaml": suite(cases, "  thresholds: {pass_rate: 0.9}\n")})
    assert invoke(["eval", "."], cwd=repo).exit_code == 5


JUDGE = (
    "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: judge}\n"
    "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
    '      - contains: polite\n        reply: \'Verdict: {"score": 0.9, "reason": "kind words"}\'\n'
)


def test_judged_and_similarity_assertions(tmp_path):
    cases = (
        "    - {id: judged, input: thanks, assert: [{type: llm_judge, rubric: 'polite'}]}\n"
        "    - {id: strict, input: thanks, assert: [{type: llm_judge, rubric: 'polite', threshold: 0.95}]}\n"
        "    - {id: close, input: the parcel has shipped, assert: [{type: similar, value: 'the parcel has shipped'}]}\n"
        "    - {id: far, input: the parcel has shipped, assert: [{type: not_similar, value: 'gardening in spring'}]}\n"
    )
    repo = repo_with(tmp_path, suite(cases, "  judge: judge\n"), {"judge.yaml": JUDGE})
    (result,) = Context(workspace=repo).evaluate([str(repo)])
    by_id = {c.case_id: c for c in result.cases}
    assert {k: c.passed for k, c in by_id.items()} == {
        "judged": True, "strict": False, "close": True, "far": True
    }  # fmt: skip
    assert by_id["judged"].assertions[0].reason == "judge score 0.9 (needs 0.5): kind words"
    assert "cosine similarity" in (by_id["close"].assertions[0].reason or "")


def outcome(**overrides: object) -> Outcome:
    base = {"output": '{"status": "shipped", "items": [1, 2]}', "status": "succeeded",
            "latency_ms": 120.0, "cost_usd": 0.002, "tokens": 300,
            "tool_calls": [("lookup", {"id": "7"}), ("refund", {"id": "7", "amount": 5})],
            "handoffs": ["billing"], "blocked_by": [], "vars": {"x": 1}}  # fmt: skip
    return Outcome(**{**base, **overrides})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("assertion", "passed"),
    [
        ({"type": "is_json"}, True),
        ({"type": "not_is_json"}, False),
        ({"type": "json_path", "path": "/items/1", "value": 2}, True),
        ({"type": "json_path", "path": "/status", "value": "lost"}, False),
        ({"type": "json_schema", "schema": {"type": "object", "required": ["eta"]}}, False),
        ({"type": "contains_all", "values": ["SHIPPED", "items"], "ignore_case": True}, True),
        ({"type": "contains_any", "values": ["x1", "y2"]}, False),
        ({"type": "regex", "pattern": r"\[1, 2\]"}, True),
        ({"type": "tool_called", "name": "refund", "args": {"amount": 5}}, True),
        ({"type": "tool_args", "name": "refund", "args": {"amount": 6}}, False),
        ({"type": "not_tool_called", "name": "delete"}, True),
        ({"type": "tool_sequence", "sequence": ["lookup", "refund"], "exact": True}, True),
        ({"type": "tool_sequence", "sequence": ["refund", "lookup"]}, False),
        ({"type": "handoff_to", "agent": "billing"}, True),
        ({"type": "guardrail_blocked"}, False),
        ({"type": "latency", "max_ms": 100}, False),
        ({"type": "cost", "max_usd": 0.01}, True),
        ({"type": "tokens", "max": 299}, False),
        ({"type": "expression", "expr": "len(tools) == 2 and vars.x == 1"}, True),
        ({"type": "expression", "expr": "'a' * 10**9"}, False),  # a bomb fails, nothing hangs
    ],
)
def test_assertions(assertion, passed):
    assert check(assertion, outcome()).passed is passed


def test_junit_xml_has_a_testcase_per_case_and_the_failures(tmp_path):
    import xml.etree.ElementTree as ET

    cases = (
        "    - {id: ok, input: a, assert: [{type: contains, value: echo}]}\n"
        "    - {id: bad, input: b, assert: [{type: contains, value: nope, name: wants-nope}]}\n"
    )
    repo = repo_with(tmp_path, suite(cases))
    assert invoke(["eval", ".", "--junit", "junit.xml"], cwd=repo).exit_code == 5
    root = ET.parse(repo / "junit.xml").getroot()
    assert root.tag == "testsuites" and (root.get("tests"), root.get("failures")) == ("2", "1")
    (testsuite,) = root.findall("testsuite")
    assert testsuite.get("name") == "smoke" and testsuite.get("tests") == "2"
    properties = {p.get("name"): p.get("value") for p in testsuite.iter("property")}
    assert properties["agent"] == "bot" and properties["pass_rate"] == "0.5000"
    cases_by_name = {c.get("name"): c for c in testsuite.findall("testcase")}
    assert set(cases_by_name) == {"ok", "bad"}
    assert cases_by_name["ok"].find("failure") is None
    failure = cases_by_name["bad"].find("failure")
    assert (
        failure is not None and failure.get("message") == "wants-nope: 'nope' is not in the output"
    )
    assert float(cases_by_name["bad"].get("time") or "x") >= 0


CHECKS_PY = """
SEEN = {"n": 0}


def every_other(output, context):
    SEEN["n"] += 1
    return SEEN["n"] % 2 == 0, "odd call"
"""


def test_a_matrix_runs_every_variant_and_repeats_give_intervals_and_flaky_cases(tmp_path):
    cases = (
        "    - {id: greet, input: 'hi {{ vars.who }}', assert: [{type: contains, value: Ann}]}\n"
        "    - {id: wobble, input: x, assert: [{type: python, entrypoint: 'helpers.checks:every_other'}]}\n"
    )
    extra = (
        "  matrix: {model: [script, local/echo], vars: {who: [Ann, Bob]}, temperature: [0.1]}\n"
        "  repeat: 2\n  concurrency: 1\n  thresholds: {pass_rate: 0.2, variant_pass_rate: 0.5}\n"
    )
    repo = repo_with(tmp_path, suite(cases, extra), {"helpers/checks.py": CHECKS_PY})
    (result,) = Context(workspace=repo).evaluate([str(repo)])
    assert len(result.cases) == 2 * 2 * 2 * 2  # cases x models x vars x repeats
    rates = result.variant_rates()
    assert set(rates) == {
        "model=script,temperature=0.1,who=Ann", "model=script,temperature=0.1,who=Bob",
        "model=local/echo,temperature=0.1,who=Ann", "model=local/echo,temperature=0.1,who=Bob",
    }  # fmt: skip
    assert rates["model=script,temperature=0.1,who=Ann"] == 0.75  # greet x2, wobble 1 of 2
    assert rates["model=script,temperature=0.1,who=Bob"] == 0.25  # greet fails: no Ann
    assert not result.passed  # a variant below variant_pass_rate fails the suite
    stats = {(s["case"], s["variant"]): s for s in result.case_stats()}
    wobble = stats[("wobble", "model=local/echo,temperature=0.1,who=Ann")]
    assert wobble["flaky"] and wobble["runs"] == 2 and wobble["passes"] == 1
    assert wobble["wilson_95"] == [0.0945, 0.9055]
    with Context(workspace=repo).prompt_log() as log:
        models = {
            r[0]
            for r in log.conn.execute("SELECT model FROM runs WHERE eval_id = ?", [result.eval_id])
        }
        request = [e for r in log.runs(limit=1) for e in log.events(r.id) if e.type == "model_call"]
    assert models == {"local/scripted", "local/echo"}  # the model that answered
    assert request[0].payload["request"]["params"]["temperature"] == 0.1
    shown = invoke(["eval", "."], cwd=repo)
    assert (
        shown.exit_code == 5 and "FLAKY" in shown.stdout and "variant model=script" in shown.stdout
    )


def test_wilson_interval():
    from afctl.eval.runner import wilson

    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson(0, 0) == (0.0, 1.0)
    low, high = wilson(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-4) and high == pytest.approx(0.5962, abs=1e-4)


def test_choosing_cases_and_comparing_with_a_baseline(tmp_path):
    cases = "".join(
        f"    - {{id: c{i}, input: x{i}, assert: [{{type: contains, value: 'echo: x{i}'}}]}}\n"
        for i in range(4)
    )
    repo = repo_with(tmp_path, suite(cases))
    first = invoke(["eval", ".", "-o", "json"], cwd=repo)
    assert first.exit_code == 0
    first_id = json.loads(first.stdout)[0]["eval_id"]
    assert (
        invoke(["eval", ".", "--filter", "c[12]", "-o", "json"], cwd=repo).stdout.count('"case_id"')
        == 2
    )
    assert (
        invoke(["eval", ".", "--limit", "1", "-o", "json"], cwd=repo).stdout.count('"case_id"') == 1
    )
    broken = cases.replace("'echo: x1'", "'nope'").replace("'echo: x2'", "'nope'")
    write_repo(repo, {"evals/suite.yaml": suite(broken)})
    worse = invoke(["eval", ".", "--baseline", first_id[:16]], cwd=repo)
    assert worse.exit_code == 5  # below the pass rate anyway
    assert "regressions against" in worse.stdout and "c1 [default], c2 [default]" in worse.stdout
    rerun = invoke(["eval", ".", "--only-failed", "last", "-o", "json"], cwd=repo)
    ids = [c["case_id"] for c in json.loads(rerun.stdout)[0]["cases"]]
    assert ids == ["c1", "c2"]
    write_repo(repo, {"evals/suite.yaml": suite(cases, "  thresholds: {pass_rate: 0.1}\n")})
    fixed = invoke(["eval", ".", "--baseline", "last", "--fail-on-regression"], cwd=repo)
    assert fixed.exit_code == 0 and "fixes against" in fixed.stdout
    write_repo(repo, {"evals/suite.yaml": suite(broken, "  thresholds: {pass_rate: 0.1}\n")})
    regressed = invoke(["eval", ".", "--fail-on-regression"], cwd=repo)
    assert regressed.exit_code == 5  # the pass rate is met, but cases regressed
    with Context(workspace=repo).prompt_log() as log:
        assert log.conn.execute("SELECT count(*) FROM eval_records").fetchone()[0] == 7
    evals = (
        Context(workspace=repo)
        .query("SELECT suite, cases FROM evals ORDER BY started_at")
        .records()
    )
    assert evals[0] == {"suite": "smoke", "cases": 4}


def test_a_mistyped_assertion_type_names_the_line_and_the_nearest_type(tmp_path):
    cases = "    - {id: a, input: x, assert: [{type: not_contians, value: y}]}\n"
    repo = repo_with(tmp_path, suite(cases))
    result = invoke(["validate", "-f", "."], cwd=repo)
    assert result.exit_code == 3
    assert 'unknown assertion type "not_contians"' in result.stdout
    assert "evals/suite.yaml:7:41" in result.stdout and 'did you mean "contains"' in result.stdout

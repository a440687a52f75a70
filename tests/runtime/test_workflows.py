"""Workflows with offline models: ordering, real concurrency, conditions, fan-out, retries,
error handling, sub-workflows, the prompt log, and resume after a crash."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.errors import UsageError
from afctl.testing import invoke, write_repo
from tests.postgres import elsewhere
from tests.signals import as_from_a_shell

TOOLS_PY = '''
import asyncio
import time
from pathlib import Path

TIMES = []


async def mark(name: str, wait: float = 0.0) -> str:
    """Record when a step starts and ends.

    Args:
        name: The step.
        wait: Seconds to take.
    """
    TIMES.append((name, "start", time.monotonic()))
    await asyncio.sleep(wait)
    TIMES.append((name, "end", time.monotonic()))
    return name


async def double(n: int) -> int:
    """Twice n, slower for bigger n.

    Args:
        n: A number.
    """
    await asyncio.sleep(0.05 * n)
    return 2 * n


def flaky(failures: int, key: str) -> str:
    """Fails `failures` times per key, then works.

    Args:
        failures: How many calls fail.
        key: Which counter.
    """
    counter = Path(__file__).parent / f"calls-{key}.txt"
    calls = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(calls + 1))
    if calls < failures:
        raise RuntimeError(f"failure {calls + 1}")
    return f"worked after {calls + 1}"


def slow_once(key: str) -> str:
    """Hangs the first time (until killed), answers after.

    Args:
        key: Which marker.
    """
    marker = Path(__file__).parent / f"hung-{key}.txt"
    if not marker.exists():
        marker.write_text("hung")
        time.sleep(120)
    return "finished"


def count_calls(key: str) -> str:
    """Counts its calls per key.

    Args:
        key: Which counter.
    """
    counter = Path(__file__).parent / f"count-{key}.txt"
    counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))
    return key
'''

TOOLS = "".join(
    f"apiVersion: afctl/v1\nkind: Tool\nmetadata: {{name: {name.replace('_', '-')}}}\n"
    f"spec: {{type: python, entrypoint: 'steps.tools:{name}'}}\n---\n"
    for name in ("mark", "double", "flaky", "slow_once", "count_calls")
)
AGENTS = (
    "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: triage-model}\n"
    "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
    '      - contains: refund\n        reply: \'{"priority": "high", "team": "billing"}\'\n'
    '    default: \'{"priority": "low", "team": "support"}\'\n---\n'
    "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: triage}\n"
    "spec: {model: triage-model, instructions: Classify.}\n---\n"
    "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: writer}\n"
    "spec: {model: local/echo, instructions: Write.}\n"
)


def repo_with(tmp_path: Path, workflows: str) -> Path:
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "steps/__init__.py": "",
            "steps/tools.py": TOOLS_PY,
            "resources.yaml": TOOLS + AGENTS,
            "workflows.yaml": workflows,
        },
    )


def workflow(name: str, body: str) -> str:
    return f"apiVersion: afctl/v1\nkind: Workflow\nmetadata: {{name: {name}}}\nspec:\n{body}"


def run(repo: Path, name: str, **inputs: object):  # type: ignore[no-untyped-def]
    return Context(workspace=repo).run_workflow(
        f"workflow/{name}", dict(inputs), paths=[str(repo)], typed=True
    )


def times() -> dict[tuple[str, str], float]:
    from steps import tools  # the module the python tools ran from

    return {(name, what): at for name, what, at in tools.TIMES}


DAG = workflow(
    "dag",
    "  max_parallel: 4\n  steps:\n"
    "    - {id: a, tool: mark, input: {name: a}}\n"
    "    - {id: b, tool: mark, needs: [a], input: {name: b, wait: 0.3}}\n"
    "    - {id: c, tool: mark, needs: [a], input: {name: c, wait: 0.3}}\n"
    "    - {id: d, tool: mark, needs: [b, c], input: {name: '{{ steps.b.output }}+{{ steps.c.output }}'}}\n"
    "  outputs: {last: '{{ steps.d.output }}'}\n",
)


def test_steps_run_in_dependency_order_and_independent_steps_run_at_once(tmp_path):
    repo = repo_with(tmp_path, DAG)
    result = run(repo, "dag")
    assert result.ok and result.outputs == {"last": "b+c"}
    at = times()
    assert at[("a", "end")] <= at[("b", "start")] and at[("a", "end")] <= at[("c", "start")]
    assert at[("b", "start")] < at[("c", "end")] and at[("c", "start")] < at[("b", "end")]
    assert at[("b+c", "start")] >= max(at[("b", "end")], at[("c", "end")])
    with Context(workspace=repo).prompt_log() as log:
        record = log.run(result.run_id)
        children = log.conn.execute(
            "SELECT kind, target, status FROM runs WHERE parent_id = ? ORDER BY started_at",
            [result.run_id],
        ).fetchall()
        steps = [e.payload["id"] for e in log.events(result.run_id) if e.type == "step"]
    assert record.kind == "workflow" and record.status == "succeeded"
    assert children == [("tool", "tool/mark", "succeeded")] * 4
    assert steps[0] == "a" and steps[-1] == "d" and sorted(steps[1:3]) == ["b", "c"]


CONDITIONS = workflow(
    "route",
    "  inputs: {type: object, required: [text], properties: {text: {type: string}}}\n"
    "  steps:\n"
    "    - {id: triage, agent: triage, input: '{{ inputs.text }}'}\n"
    "    - id: refund\n      tool: mark\n      needs: [triage]\n"
    "      when: \"steps.triage.output.priority == 'high'\"\n      input: {name: refund}\n"
    "    - {id: notify, tool: mark, needs: [refund], input: {name: notify}}\n"
    "    - {id: reply, agent: writer, needs_any: [refund, triage], "
    "input: 'team {{ steps.triage.output.team }}'}\n"
    "  outputs: {team: '{{ steps.triage.output.team }}', reply: '{{ steps.reply.output }}'}\n",
)


def test_when_skips_a_step_and_its_dependants_unless_they_need_any(tmp_path):
    repo = repo_with(tmp_path, CONDITIONS)
    low = run(repo, "route", text="hello")
    assert low.ok and low.outputs == {"team": "support", "reply": "team support"}
    status = {k: s.status for k, s in low.steps.items()}
    assert status == {"triage": "succeeded", "refund": "skipped", "notify": "skipped",
                      "reply": "succeeded"}  # fmt: skip
    assert low.steps["notify"].reason == "refund did not succeed"
    high = run(repo, "route", text="I want a refund")
    assert {k: s.status for k, s in high.steps.items()} == dict.fromkeys(status, "succeeded")
    assert high.steps["triage"].output == {"priority": "high", "team": "billing"}


FAN_OUT = workflow(
    "fan",
    "  inputs: {type: object, properties: {numbers: {type: array, items: {type: integer}}}}\n"
    "  steps:\n"
    "    - id: each\n      tool: double\n      for_each: 'inputs.numbers'\n"
    "      input: {n: '{{ item }}'}\n"
    "    - {id: total, tool: mark, needs: [each], input: {name: 'sum {{ steps.each.output | sum }}'}}\n"
    "  outputs: {doubled: '{{ steps.each.output }}'}\n",
)


def test_for_each_runs_items_concurrently_and_keeps_their_order(tmp_path):
    repo = repo_with(tmp_path, FAN_OUT)
    started = time.perf_counter()
    result = run(repo, "fan", numbers=[6, 1, 4, 2])
    assert result.ok and result.steps["each"].output == [12, 2, 8, 4]  # "{{ item }}" -> int
    assert result.outputs == {"doubled": [12, 2, 8, 4]}  # one expression keeps its type
    assert time.perf_counter() - started < 0.05 * 13 * 0.9  # not one after another (0.65 s)
    assert len(result.steps["each"].runs) == 4


DEFAULTS = workflow(
    "defaults",
    "  inputs:\n    type: object\n    properties:\n"
    "      numbers: {type: array, items: {type: integer}, default: []}\n"
    "      options: {type: object, properties: {label: {type: string, default: none}}}\n"
    "  steps:\n"
    "    - id: each\n      tool: double\n      for_each: 'inputs.numbers'\n"
    "      input: {n: '{{ item }}'}\n"
    "  outputs: {doubled: '{{ steps.each.output }}', label: '{{ inputs.options.label }}', "
    "count: '{{ inputs.numbers | length }}', text: 'n={{ inputs.numbers | length }}'}\n",
)


def test_input_defaults_are_applied_and_one_expression_keeps_its_type(tmp_path):
    """Issue 15 #6 and #7."""
    repo = repo_with(tmp_path, DEFAULTS)
    result = run(repo, "defaults")
    assert result.ok, result.error
    assert result.outputs == {"doubled": [], "label": "none", "count": 0, "text": "n=0"}


def test_webhook_mappings_keep_the_types_of_the_body():
    from afctl.triggers.webhook import inputs_of

    body = json.dumps({"orders": ["A1", "B2"], "n": 3, "meta": {"x": True}}).encode()
    mapping = {"orders": "{{ event.body.orders }}", "n": " {{ event.body.n }} ",
               "meta": "{{ event.body.meta }}", "said": "orders: {{ event.body.orders }}"}  # fmt: skip
    assert inputs_of(body, {}, "/h", mapping) == {
        "orders": ["A1", "B2"], "n": 3, "meta": {"x": True}, "said": "orders: ['A1', 'B2']",
    }  # fmt: skip


RETRIES = workflow(
    "retries",
    "  steps:\n"
    "    - id: shaky\n      tool: flaky\n      input: {failures: '{{ inputs.failures }}', key: '{{ inputs.key }}'}\n"
    "      retry: {attempts: 3, backoff_s: 0.01}\n"
    "      on_error: '{{ inputs.policy }}'\n",
)


def retries(policy: str) -> str:
    return workflow(
        "retries",
        "  steps:\n"
        "    - id: shaky\n      tool: flaky\n"
        "      input: {failures: '{{ inputs.failures }}', key: '{{ inputs.key }}'}\n"
        f"      retry: {{attempts: 3, backoff_s: 0.01}}\n      on_error: {policy}\n"
        "    - {id: after, tool: mark, needs_any: [shaky], input: {name: after}}\n"
        + (
            "    - {id: fallback, tool: mark, input: "
            "{name: 'handled {{ error.step }}: {{ error.message }}'}}\n"
            if policy == "fallback"
            else ""
        ),
    )


def test_a_failing_step_is_retried_then_fails_continues_or_is_handled(tmp_path):
    repo = repo_with(tmp_path, retries("fail"))
    worked = run(repo, "retries", failures=2, key="a")
    assert worked.ok and worked.steps["shaky"].output == "worked after 3"
    assert worked.steps["shaky"].attempts == 3 and len(worked.steps["shaky"].runs) == 3
    failed = run(repo, "retries", failures=5, key="b")
    assert (
        not failed.ok and failed.error == "step shaky failed: tool/flaky: RuntimeError: failure 3"
    )
    with Context(workspace=repo).prompt_log() as log:
        assert log.run(failed.run_id).status == "failed"
    (repo / "workflows.yaml").write_text(retries("continue"))
    went_on = run(repo, "retries", failures=5, key="c")
    assert went_on.ok and went_on.steps["shaky"].status == "failed"
    assert went_on.steps["after"].status == "skipped"  # needs_any: none succeeded
    (repo / "workflows.yaml").write_text(retries("fallback"))
    handled = run(repo, "retries", failures=5, key="d")
    assert handled.ok and handled.steps["fallback"].output == (
        "handled shaky: tool/flaky: RuntimeError: failure 3"
    )
    calm = run(repo, "retries", failures=0, key="e")
    assert calm.ok and calm.steps["fallback"].status == "skipped"  # a handler waits for an error


TIMEOUTS = workflow(
    "slow",
    "  steps:\n"
    "    - id: wait\n      tool: mark\n      input: {name: w, wait: 5}\n      timeout_s: 0.2\n"
    "      retry: {attempts: 2, backoff_s: 0, on: [timeout]}\n",
)


def test_an_attempt_past_its_timeout_fails_and_is_retried_when_asked(tmp_path):
    repo = repo_with(tmp_path, TIMEOUTS)
    started = time.perf_counter()
    result = run(repo, "slow")
    assert not result.ok and "longer than 0.2 s" in (result.error or "")
    assert result.steps["wait"].attempts == 2 and time.perf_counter() - started < 2


def test_inputs_are_checked_before_anything_runs(tmp_path):
    repo = repo_with(tmp_path, CONDITIONS)
    with pytest.raises(UsageError, match="does not match its schema"):
        run(repo, "route", text=3)
    with Context(workspace=repo).prompt_log() as log:
        assert log.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
    coerced = invoke(["run", "-f", ".", "workflow/fan", "--input", "numbers=[1, 2]", "-o", "json"],
                     cwd=repo_with(tmp_path / "fan", FAN_OUT))  # fmt: skip
    assert coerced.exit_code == 0, coerced.stderr
    assert json.loads(coerced.stdout)["steps"]["each"]["output"] == [2, 4]


NESTED = (
    workflow(
        "inner",
        "  inputs: {type: object, properties: {n: {type: integer}}}\n  steps:\n"
        "    - {id: twice, tool: double, input: {n: '{{ inputs.n }}'}}\n"
        "  outputs: {value: '{{ steps.twice.output }}'}\n",
    )
    + "---\n"
    + workflow(
        "outer",
        "  steps:\n"
        "    - {id: call, workflow: inner, input: {n: 3}}\n"
        "    - {id: show, tool: mark, needs: [call], input: {name: 'got {{ steps.call.output.value }}'}}\n"
        "  outputs: {shown: '{{ steps.show.output }}'}\n",
    )
)


def test_a_sub_workflow_is_a_child_run_with_its_own_steps(tmp_path):
    repo = repo_with(tmp_path, NESTED)
    result = run(repo, "outer")
    assert result.ok and result.outputs == {"shown": "got 6"}
    with Context(workspace=repo).prompt_log() as log:
        (child,) = log.conn.execute(
            "SELECT id, kind FROM runs WHERE parent_id = ? AND kind = 'workflow'", [result.run_id]
        ).fetchall()
        grandchildren = log.conn.execute(
            "SELECT count(*) FROM runs WHERE parent_id = ?", [child[0]]
        ).fetchone()[0]
    assert grandchildren == 1
    shown = invoke(["runs", "show", result.run_id], cwd=repo)
    assert shown.exit_code == 0, shown.stderr
    assert "step    call succeeded" in shown.stdout and f"[runs {child[0]}]" in shown.stdout
    assert 'outputs {"shown": "got 6"}' in shown.stdout


BOMB = workflow(
    "bomb",
    "  steps:\n"
    "    - id: big\n      agent: writer\n"
    "      input: \"{% for i in range(100000) %}{{ 'x' * 50 }}{% endfor %}\"\n",
)


def test_a_template_past_its_budget_fails_the_step_not_the_process(tmp_path):
    repo = repo_with(tmp_path, BOMB)
    result = run(repo, "bomb")
    assert not result.ok and "more than 1000000 characters" in (result.error or "")


RESUMABLE = workflow(
    "resumable",
    "  steps:\n"
    "    - {id: first, tool: count-calls, input: {key: first}}\n"
    "    - {id: second, tool: slow-once, needs: [first], input: {key: s}}\n"
    "    - {id: third, tool: count-calls, needs: [second], input: {key: third}}\n"
    "  outputs: {second: '{{ steps.second.output }}'}\n",
)


def killed_mid_run(repo: Path, target: str, *given: str, after: tuple[str, str]) -> str:
    """Run `target` in a process of its own and kill -9 it once an event (type, tool) of
    `after` is in the log and slow_once hangs (steps/hung-s.txt); the run's id."""
    afctl = Path(sys.executable).parent / "afctl"
    process = subprocess.Popen([str(afctl), "run", target, *given], cwd=repo,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 30
    found: list[tuple[object, ...]] = []
    while time.monotonic() < deadline and not found:
        found = elsewhere(repo / ".afctl", "SELECT run_id FROM events WHERE type = ? AND "
                                           "tool = ?", after)  # fmt: skip
        time.sleep(0.05)
    while time.monotonic() < deadline and not (repo / "steps" / "hung-s.txt").exists():
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert found, f"no {after} event in the log"
    return str(found[0][0])


def test_a_killed_workflow_resumes_without_running_finished_steps_again(tmp_path):
    repo = repo_with(tmp_path, RESUMABLE)
    invoke(["apply", "-f", ".", "--yes"], cwd=repo)
    run_id = killed_mid_run(repo, "workflow/resumable", after=("step", "first"))
    listed = invoke(["runs", "--status", "interrupted", "-o", "json"], cwd=repo)
    assert run_id in listed.stdout
    resumed = invoke(["resume", run_id], cwd=repo)
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout.strip() == "second: finished"
    assert "resumed after: first" in resumed.stderr
    assert (repo / "steps" / "count-first.txt").read_text() == "1"  # not run again
    assert (repo / "steps" / "count-third.txt").read_text() == "1"
    with Context(workspace=repo).prompt_log() as log:
        assert log.run(run_id).status == "succeeded"
        steps = [e.payload["id"] for e in log.events(run_id) if e.type == "step"]
    assert steps == ["first", "second", "third"]
    again = invoke(["resume", run_id], cwd=repo)
    assert again.exit_code == 64 and "only an interrupted run resumes" in again.stderr


def test_an_eval_suite_can_target_a_workflow(tmp_path):
    suite = (
        "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: routing}\n"
        "spec:\n  target: {workflow: route}\n  cases:\n"
        "    - id: refund\n      input: {text: '{{ vars.ask }}'}\n      vars: {ask: 'a refund please'}\n"
        "      assert:\n        - {type: json_path, path: /team, value: billing}\n"
        "        - {type: tool_called, name: mark, args: {name: refund}}\n"
        "    - id: hello\n      input: {text: hi}\n"
        "      assert: [{type: json_path, path: /team, value: support}, {type: not_tool_called, name: mark}]\n"
        "    - id: wrong-input\n      input: {text: 3}\n      assert: [{type: is_json}]\n"
    )
    repo = repo_with(tmp_path, CONDITIONS)
    (repo / "suite.yaml").write_text(suite)
    (result,) = Context(workspace=repo).evaluate([str(repo)])
    outcome = {c.case_id: c.passed for c in result.cases}
    assert outcome == {"refund": True, "hello": True, "wrong-input": False}
    wrong = next(c for c in result.cases if c.case_id == "wrong-input")
    assert "does not match its schema" in (wrong.error or "")
    assert result.agent == "workflow/route"
    assert result.cache == {"hits": 0, "misses": 4}  # two agent steps in each of two cases
    (again,) = Context(workspace=repo).evaluate([str(repo)])
    assert again.cache == {"hits": 4, "misses": 0} and again.pass_rate == result.pass_rate
    with Context(workspace=repo).prompt_log() as log:
        kinds = log.conn.execute(
            "SELECT kind, count(*) FROM runs WHERE eval_id = ? GROUP BY kind", [result.eval_id]
        ).fetchall()
    assert dict(kinds)["workflow"] == 2 and dict(kinds)["agent"] >= 4  # steps carry the eval id
    (repo / "suite.yaml").write_text(
        suite.replace("  cases:", "  matrix: {model: [local/echo]}\n  cases:")
    )
    with pytest.raises(UsageError, match="a workflow's matrix varies only `vars`"):
        Context(workspace=repo).evaluate([str(repo)])


def test_a_workflow_run_replays_offline_and_reports_where_a_changed_workflow_diverges(tmp_path):
    repo = repo_with(tmp_path, CONDITIONS + "---\n" + retries("continue"))
    routed = run(repo, "route", text="I want a refund")
    retried = run(repo, "retries", failures=1, key="r")
    assert routed.ok and retried.ok and retried.steps["shaky"].attempts == 2
    with Context(workspace=repo).prompt_log() as log:
        before = log.conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    for result in (routed, retried):
        replayed = invoke(["replay", result.run_id], cwd=repo)
        assert replayed.exit_code == 0, replayed.output
        assert "reproduced" in replayed.stdout
    assert (repo / "steps" / "calls-r.txt").read_text() == "2"  # no tool ran again
    with Context(workspace=repo).prompt_log() as log:
        assert (
            log.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == before
        )  # nothing written
    changed = (
        (repo / "workflows.yaml")
        .read_text()
        .replace("'team {{ steps.triage.output.team }}'", "'for {{ steps.triage.output.team }}'")
    )
    (repo / "workflows.yaml").write_text(changed)
    diverged = invoke(["replay", routed.run_id, "--revision", "current", "-f", "."], cwd=repo)
    assert diverged.exit_code == 5, diverged.output
    assert (
        "step reply asked agent/writer with an input the recording does not have" in diverged.stdout
    )
    recorded = invoke(["replay", routed.run_id], cwd=repo)  # the recorded revision still reproduces
    assert recorded.exit_code == 0


def test_diff_runs_compares_a_workflows_steps(tmp_path):
    """Issue 15 #15: step-by-step differences of two workflow runs, exit 2."""
    repo = repo_with(tmp_path, FAN_OUT)
    a, b = run(repo, "fan", numbers=[1, 2]), run(repo, "fan", numbers=[1, 3])
    diff = Context(workspace=repo).diff_runs(a.run_id, b.run_id)
    changed = {c["step"]: c for c in diff.step_changes}
    assert changed["each"]["a"]["output"] == [2, 4] and changed["each"]["b"]["output"] == [2, 6]
    shown = invoke(["diff-runs", a.run_id, b.run_id], cwd=repo)
    assert shown.exit_code == 2 and "step each:" in shown.stdout


def test_ctrl_c_names_the_run_and_how_to_go_on(tmp_path):
    """Issue 15: Ctrl-C printed "Interrupted." without the run id or the resume hint."""
    repo = repo_with(tmp_path, workflow(
        "waits", "  steps:\n    - {id: wait, tool: mark, input: {name: w, wait: 60}}\n"))  # fmt: skip
    invoke(["apply", "-f", ".", "--yes"], cwd=repo)
    afctl = Path(sys.executable).parent / "afctl"
    process = subprocess.Popen(
        [str(afctl), "run", "workflow/waits"], cwd=repo,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=as_from_a_shell,
    )  # fmt: skip
    db = repo / ".afctl" / "logs.db"
    deadline = time.monotonic() + 30
    run_id = None
    while time.monotonic() < deadline and run_id is None:
        time.sleep(0.1)
        if db.exists():
            with sqlite3.connect(db, timeout=5) as connection:
                try:
                    row = connection.execute(
                        "SELECT id FROM runs WHERE kind = 'tool' AND status = 'running'"
                    ).fetchone()
                    parent = connection.execute("SELECT id FROM runs WHERE kind = 'workflow'")
                    run_id = parent.fetchone()[0] if row else None
                except sqlite3.OperationalError:
                    pass
    if run_id is None:
        process.kill()
        raise AssertionError(f"the tool step was never seen running: {process.communicate()}")
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert f"afctl resume {run_id}" in stderr, stderr

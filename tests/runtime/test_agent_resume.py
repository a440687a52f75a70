"""An interrupted agent run goes on as the same run from its last recorded model answer: tool
calls with recorded results are not made again, the one in flight is made again (issue 17)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from afctl.context import AsyncContext, Context
from afctl.errors import UsageError
from afctl.promptlog.store import EventRecord
from afctl.providers.types import Message, ToolCall
from afctl.runtime.resumption import blocked_reason, resumption
from afctl.runtime.run_types import RunHooks
from afctl.testing import invoke
from tests.runtime.test_workflows import killed_mid_run, repo_with, workflow


def _model(name: str, rules: str) -> str:
    return (
        f"apiVersion: afctl/v1\nkind: Model\nmetadata: {{name: {name}}}\n"
        f"spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n{rules}"
    )


def _agent(name: str, model: str, tools: str, extra: str = "") -> str:
    return (
        f"apiVersion: afctl/v1\nkind: Agent\nmetadata: {{name: {name}}}\n"
        f"spec: {{model: {model}, instructions: Help., tools: {tools}{extra}}}\n"
    )


AGENTS = "---\n".join(
    [
        # one turn asks for two calls: a counted one that returns at once, and one that hangs
        _model(
            "two-calls",
            "      - turn: 1\n        tool_calls: [{name: count-calls, arguments: {key: a}},"
            " {name: slow-once, arguments: {key: s}}]\n"
            "      - after_tool: slow-once\n        reply: 'done: {{ tool_result }}'\n",
        ),
        _agent("patient", "two-calls", "[count-calls, slow-once]"),
        # front counts a call and hands off in one turn; back then calls a slow tool
        _model(
            "front-model",
            "      - turn: 1\n        tool_calls: [{name: count-calls, arguments: {key: f}},"
            " {name: transfer_to_back, arguments: {}}]\n",
        ),
        _agent("front", "front-model", "[count-calls]", ", handoffs: [back]"),
        _model(
            "back-model",
            "      - after_tool: mark\n        reply: 'back says {{ tool_result }}'\n"
            "      - turn: 2\n        tool_calls: [{name: mark, arguments: {name: slow, wait: 0.3}}]\n"
            "      - contains: again\n        tool_calls: [{name: mark, arguments: {name: slow}}]\n",
        ),
        _agent("back", "back-model", "[mark]"),
        workflow(
            "patiently",
            "  steps:\n    - {id: ask, agent: patient, input: go}\n"
            "  outputs: {said: '{{ steps.ask.output }}'}\n",
        ),
    ]
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = repo_with(tmp_path, AGENTS)
    applied = invoke(["apply", "-f", ".", "--yes"], cwd=repo)
    assert applied.exit_code == 0, applied.stderr
    return repo


def test_an_agent_run_killed_mid_call_resumes_without_making_finished_calls_again(repo):
    run_id = killed_mid_run(repo, "agent/patient", "go", after=("tool_call", "count-calls"))
    resumed = invoke(["resume", run_id, "-o", "json"], cwd=repo)
    assert resumed.exit_code == 0, resumed.stderr
    result = __import__("json").loads(resumed.stdout)
    assert result["run_id"] == run_id and result["status"] == "succeeded"
    assert result["output"] == "done: finished" and result["turns"] == 2
    assert result["tool_calls"] == 2  # the run's calls, counted once each
    assert (repo / "steps" / "count-a.txt").read_text() == "1"  # its result was recorded
    with Context(workspace=repo).prompt_log() as log:
        events = list(log.events(run_id))
        assert log.run(run_id).status == "succeeded"
    kinds = [(e.type, e.tool) for e in events if e.type in ("model_call", "tool_call")]
    assert kinds == [("model_call", None), ("tool_call", "count-calls"),
                     ("tool_call", "slow-once"), ("model_call", None)]  # fmt: skip
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    # the second model call was sent both results, in the order the model asked for them
    sent = [e for e in events if e.type == "model_call"][-1].payload["request"]["messages"]
    assert [m.get("content") for m in sent if m["role"] == "tool"] == ["a", "finished"]
    again = invoke(["resume", run_id], cwd=repo)
    assert again.exit_code == 64 and "only an interrupted run resumes" in again.stderr


def test_a_workflow_killed_mid_agent_step_resumes_the_steps_agent_run(repo):
    child = killed_mid_run(repo, "workflow/patiently", after=("tool_call", "count-calls"))
    with Context(workspace=repo).prompt_log() as log:
        parent = log.run(child).parent_id
    assert parent is not None
    resumed = invoke(["resume", parent], cwd=repo)
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout.strip() == "said: done: finished"
    assert (repo / "steps" / "count-a.txt").read_text() == "1"  # not made again
    with Context(workspace=repo).prompt_log() as log:
        steps = log.sql.query("SELECT id, status FROM runs WHERE parent_id = ?", [parent])
        events = [(e.type, e.tool) for e in log.events(child)
                  if e.type in ("model_call", "tool_call")]  # fmt: skip
    assert [(r["id"], r["status"]) for r in steps] == [(child, "succeeded")]  # the same run
    assert events == [("model_call", None), ("tool_call", "count-calls"),
                      ("tool_call", "slow-once"), ("model_call", None)]  # fmt: skip


async def _interrupt(repo: Path, target: str, when_tool: str) -> str:
    """Start a run and cancel it as `when_tool` starts (what a drained server does)."""
    async with AsyncContext(workspace=repo) as context:
        task: asyncio.Task[Any] | None = None

        def on_event(kind: str, payload: dict[str, Any]) -> None:
            if kind == "tool_started" and payload["name"] == when_tool and task is not None:
                task.cancel()

        run_id = "01JRESUMEAGENTRUNXXXXXXXXX"
        task = asyncio.create_task(
            context.run(target, "hello", run_id=run_id, hooks=RunHooks(on_event=on_event))
        )
        with pytest.raises(asyncio.CancelledError):
            await task
        return run_id


def test_a_run_interrupted_after_a_handoff_goes_on_with_the_agent_handed_to(repo):
    run_id = asyncio.run(_interrupt(repo, "agent/front", "mark"))
    with Context(workspace=repo) as context:
        assert context.transcript(run_id).run.status == "interrupted"
        result = context.resume(run_id)
        assert result.status == "succeeded", result.error
        assert result.output == "back says slow" and result.agent == "back"
        events = context.transcript(run_id).events
    assert (repo / "steps" / "count-f.txt").read_text() == "1"
    assert [e.type for e in events].count("handoff") == 1
    calls = [e for e in events if e.type == "model_call"]
    assert [c.payload["agent"] for c in calls] == ["front", "back", "back"]
    # back's conversation after the resume keeps its own instructions and the handoff
    sent = calls[-1].payload["request"]["messages"]
    assert sent[0]["role"] == "system" and "Transferred to back." in [
        m.get("content") for m in sent
    ]


def test_only_an_interrupted_top_level_run_resumes(repo):
    with Context(workspace=repo) as context:
        done = context.run("agent/back", "nothing to do")
        with pytest.raises(UsageError, match="is succeeded; only an interrupted run resumes"):
            context.resume(done.run_id)
        with context.prompt_log() as log:
            log.conn.execute("UPDATE runs SET status = 'interrupted', parent_id = 'P' WHERE id = ?",
                             [done.run_id])  # fmt: skip
            log.conn.commit()
        with pytest.raises(UsageError, match="is a step of run P") as caught:
            context.resume(done.run_id)
        assert caught.value.hint == "resume that one: afctl resume P"


def test_a_run_interrupted_before_its_first_answer_starts_its_conversation_again(repo):
    with Context(workspace=repo) as context:
        done = context.run("agent/back", "again")  # back calls mark, then answers
        with context.prompt_log() as log:  # as if the process had died before any answer
            for table in ("events", "event_payloads"):
                log.conn.execute(f"DELETE FROM {table} WHERE run_id = ?", [done.run_id])
            # the run's row as it was when it started (the model it was asked for)
            log.conn.execute("UPDATE runs SET status = 'interrupted', model = 'back-model' "
                             "WHERE id = ?", [done.run_id])  # fmt: skip
            log.conn.commit()
        result = context.resume(done.run_id)
        assert result.status == "succeeded" and result.output == "back says slow"
        assert result.run_id == done.run_id and result.turns == 2


# -- reading where a run stopped, from its events --------------------------------------------


def _event(seq: int, kind: str, payload: dict[str, Any], turn: int = 1, **narrow: Any) -> Any:
    columns = dict.fromkeys(("model", "tool", "status", "latency_ms", "input_tokens",
                             "output_tokens", "cost_usd"))  # fmt: skip
    return EventRecord(seq, kind, "t", turn, payload=payload, **{**columns, **narrow})


def _model_call(seq: int, turn: int, answer: Message, agent: str = "a", **narrow: Any) -> Any:
    request = {"messages": [{"role": "system", "content": "Help."},
                            {"role": "user", "content": "hi"}]}  # fmt: skip
    return _event(seq, "model_call", {"agent": agent, "request": request,
                                      "response": {"message": answer.to_dict()}},
                  turn=turn, **narrow)  # fmt: skip


RECORD = SimpleNamespace(status="interrupted", input_tokens=None)


def test_where_a_run_stopped_is_its_last_answer_with_the_results_recorded_after_it():
    calls = (ToolCall("c1", "x", {}), ToolCall("c2", "y", {}), ToolCall("c3", "z", {}))
    events = [
        _model_call(1, 1, Message("assistant", None, tool_calls=calls[:1]), input_tokens=10,
                    output_tokens=2, cost_usd=0.5),
        _event(2, "tool_call", {"id": "c1", "name": "x", "result": "old", "error": None}),
        _model_call(3, 2, Message("assistant", None, tool_calls=calls), agent="b",
                    input_tokens=20, output_tokens=3, cost_usd=None),
        _event(4, "approval", {"id": "c2", "approved": False}),
        _event(5, "tool_call", {"id": "c3", "name": "z", "result": "oops", "error": "boom"}),
    ]  # fmt: skip
    state = resumption(RECORD, events)  # type: ignore[arg-type]
    assert state is not None
    assert state.agent == "b" and state.turn == 2 and state.answer.tool_calls == calls
    assert list(state.results) == ["c3"] and state.results["c3"].is_error
    assert state.decided == {"c2": False} and state.recorded == {"c2"}
    assert state.tool_calls == 2 and state.handoff is None
    assert state.spend.usage.input_tokens == 30 and state.spend.cost is None
    assert state.messages[state.own_from].content == "hi"


def test_a_final_answer_that_was_blocked_or_invalid_is_read_as_such():
    answer = Message("assistant", "no")
    blocked = {"stage": "output", "decisions": [
        {"name": "pii", "action": "block", "tripped": True, "reason": "an email"}]}  # fmt: skip
    state = resumption(RECORD, [_model_call(1, 1, answer),  # type: ignore[arg-type]
                                _event(2, "guardrail", blocked, status="blocked")])  # fmt: skip
    assert state is not None and state.blocked == blocked
    assert blocked_reason(blocked) == "blocked by guardrail pii: an email"
    invalid = {"problems": ["'x' is required"], "repair": True}
    state = resumption(RECORD, [_model_call(1, 1, answer),  # type: ignore[arg-type]
                                _event(2, "output_invalid", invalid)])  # fmt: skip
    assert state is not None and state.invalid == invalid and not state.repaired
    assert resumption(RECORD, []) is None  # type: ignore[arg-type]

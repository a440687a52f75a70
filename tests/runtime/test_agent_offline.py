"""The agent loop with offline models and python tools: tool calls, errors that go back to the
model, limits, structured output, sessions, redaction and the prompt log."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.errors import UsageError
from afctl.testing import write_repo

TOOLS_PY = '''
import asyncio

started = {}


def word_count(text: str) -> int:
    """Count words.

    Args:
        text: The text.
    """
    return len(text.split())


def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"boom: {reason}")


def leak() -> str:
    """Returns the secret it can see."""
    import os
    return "the key is " + os.environ["DEMO_SECRET"]


async def first(name: str) -> str:
    """Waits for `second` to start: only works if both run at once."""
    started["first"] = asyncio.Event()
    started.setdefault("second", asyncio.Event())
    started["first"].set()
    await asyncio.wait_for(started["second"].wait(), 5)
    return "first done"


async def second(name: str) -> str:
    """Waits for `first` to start."""
    started.setdefault("second", asyncio.Event()).set()
    started.setdefault("first", asyncio.Event())
    await asyncio.wait_for(started["first"].wait(), 5)
    return "second done"


def slow() -> str:
    """Takes too long."""
    import time
    time.sleep(2)
    return "late"
'''


def tool(name: str, function: str | None = None, timeout: float | None = None) -> str:
    extra = f"\n  timeout_s: {timeout}" if timeout else ""
    return (
        f"apiVersion: afctl/v1\nkind: Tool\nmetadata: {{name: {name}}}\n"
        f"spec:\n  type: python\n  entrypoint: helpers.tools:{function or name}{extra}\n"
    )


def scripted(rules: str, default: str | None = None) -> str:
    body = textwrap.indent(textwrap.dedent(rules).strip(), "      ")
    default_line = f"\n    default: {default!r}" if default else ""
    return (
        "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
        f"spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n{body}{default_line}\n"
    )


def agent(tools: str = "[]", extra: str = "") -> str:
    return (
        "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: helper}\n"
        f"spec:\n  model: script\n  instructions: You help {{{{ vars.who }}}}.\n"
        f"  vars: {{who: people}}\n  tools: {tools}\n{extra}"
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "helpers/__init__.py": "",
            "helpers/tools.py": TOOLS_PY,
            "tools.yaml": "---\n".join(
                [
                    tool("word_count"),
                    tool("explode"),
                    tool("leak"),
                    tool("first"),
                    tool("second"),
                    tool("slow", timeout=0.2),
                ]
            ),
        },
    )


def run(repo: Path, text: str, **kwargs):  # type: ignore[no-untyped-def]
    return Context(workspace=repo).run("agent/helper", text, paths=[str(repo)], **kwargs)


def events(repo: Path, run_id: str):  # type: ignore[no-untyped-def]
    with Context(workspace=repo).prompt_log() as log:
        return list(log.events(run_id))


def test_a_tool_call_round_trip_is_recorded_step_by_step(repo):
    write_repo(
        repo,
        {
            "model.yaml": scripted(
                """
                - contains: count
                  tool_calls: [{name: word_count, arguments: {text: "{{ input }}"}}]
                - after_tool: word_count
                  reply: "{{ tool_result }} words"
                """
            ),
            "agent.yaml": agent("[word_count]"),
        },
    )
    result = run(repo, "count these four words")
    assert result.ok and result.output == "4 words"
    assert (result.turns, result.tool_calls, result.model) == (2, 1, "local/scripted")
    assert result.usage.input_tokens > 0 and result.cost_usd == 0.0
    steps = events(repo, result.run_id)
    assert [e.type for e in steps] == ["model_call", "tool_call", "model_call"]
    assert [e.turn for e in steps] == [1, 1, 2]
    assert steps[0].status == "tool_calls" and steps[2].status == "stop"
    assert steps[1].payload["arguments"] == {"text": "count these four words"}
    assert steps[1].payload["result"] == "4" and steps[1].status == "ok"
    assert steps[2].payload["response"]["message"]["content"] == "4 words"
    request = steps[0].payload["request"]
    assert request["messages"][0] == {"role": "system", "content": "You help people."}
    assert request["tools"][0]["parameters"]["properties"]["text"]["description"] == "The text."
    with Context(workspace=repo).prompt_log() as log:
        record = log.run(result.run_id[:20])
        assert record.status == "succeeded" and record.revision_hash
        assert log.payload(result.run_id)["output"] == "4 words"


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        ("{name: word_count, arguments: {text: 5}}", "invalid arguments"),
        ("{name: word_count, arguments: {}}", "invalid arguments"),
        ("{name: explode, arguments: {reason: x}}", "ValueError: boom: x"),
        ("{name: nothing, arguments: {}}", "there is no tool named 'nothing'"),
        ("{name: slow, arguments: {}}", "did not finish within 0.2 s"),
    ],
)
def test_tool_failures_go_back_to_the_model(repo, call, fragment):
    write_repo(
        repo,
        {
            "model.yaml": scripted(
                f"""
                - turn: 1
                  tool_calls: [{call}]
                - turn: 2
                  reply: "saw: {{{{ tool_result }}}}"
                """
            ),
            "agent.yaml": agent("[word_count, explode, slow]"),
        },
    )
    result = run(repo, "go")
    assert result.ok, result.error
    assert fragment in (result.output or "")
    results = [e for e in events(repo, result.run_id) if e.type == "tool_call"]
    assert results[0].status == "error"


def test_parallel_tool_calls_run_at_the_same_time(repo):
    write_repo(
        repo,
        {
            "model.yaml": scripted(
                """
                - turn: 1
                  tool_calls: [{name: first, arguments: {name: a}}, {name: second, arguments: {name: b}}]
                - turn: 2
                  reply: done
                """
            ),
            "agent.yaml": agent("[first, second]"),
        },
    )
    result = run(repo, "go")
    assert result.ok
    results = {
        e.tool: e.payload["result"] for e in events(repo, result.run_id) if e.type == "tool_call"
    }
    assert results == {"first": "first done", "second": "second done"}


def test_max_turns_ends_the_run_with_a_clear_status(repo):
    write_repo(
        repo,
        {
            "model.yaml": scripted(
                """
                - tool_calls: [{name: word_count, arguments: {text: again}}]
                - after_tool: word_count
                  tool_calls: [{name: word_count, arguments: {text: again}}]
                """
            ),
            "agent.yaml": agent("[word_count]", "  limits: {max_turns: 3}\n"),
        },
    )
    result = run(repo, "loop")
    assert result.status == "failed" and result.error_type == "limit"
    assert "max_turns=3" in (result.error or "") and result.turns == 3


def test_token_limit(repo):
    write_repo(
        repo,
        {"model.yaml": scripted("- reply: one two three four five six"),
         "agent.yaml": agent("[]", "  limits: {max_tokens: 5}\n")},
    )  # fmt: skip
    result = run(repo, "a b c d e f g")
    assert result.status == "failed" and "max_tokens=5" in (result.error or "")


def test_structured_output_gets_one_repair_turn(repo):
    schema = "  output_schema: {type: object, required: [n], properties: {n: {type: integer}}}\n"
    write_repo(
        repo,
        {
            "model.yaml": scripted(
                """
                - turn: 1
                  reply: "sure, it is five"
                - turn: 2
                  reply: '{"n": 5}'
                """
            ),
            "agent.yaml": agent("[]", schema),
        },
    )
    result = run(repo, "how many?")
    assert result.ok and result.output == '{"n": 5}' and result.turns == 2
    write_repo(repo, {"model.yaml": scripted("- reply: never json")})
    failed = run(repo, "how many?")
    assert failed.status == "failed" and failed.error_type == "output_schema"


def test_instructions_need_their_variables(repo):
    write_repo(
        repo,
        {
            "model.yaml": scripted("- reply: ok"),
            "agent.yaml": agent().replace("  vars: {who: people}\n", ""),
        },
    )
    result = run(repo, "hi")
    assert result.status == "failed" and "--var" in (result.error or "")
    assert run(repo, "hi", variables={"who": "Acme"}).ok


def test_sessions_continue_a_conversation_within_the_memory_bound(repo):
    write_repo(
        repo,
        {"model.yaml": scripted("- reply: 'noted: {{ input }}'"),
         "agent.yaml": agent("[]", "  memory: {type: session, max_messages: 2}\n")},
    )  # fmt: skip
    first = run(repo, "my name is Ada", session="s1")
    second = run(repo, "what is my name?", session="s1")
    assert first.ok and second.ok
    request = events(repo, second.run_id)[0].payload["request"]
    assert [m["content"] for m in request["messages"]] == [
        "You help people.", "my name is Ada", "noted: my name is Ada", "what is my name?"
    ]  # fmt: skip
    third = run(repo, "again?", session="s1")
    request = events(repo, third.run_id)[0].payload["request"]
    assert [m["content"] for m in request["messages"]][1:] == [
        "what is my name?", "noted: what is my name?", "again?"
    ]  # fmt: skip


def test_secrets_never_reach_the_log(repo, monkeypatch):
    monkeypatch.setenv("DEMO_SECRET", "hunter2-very-secret")
    write_repo(
        repo,
        {
            "model.yaml": scripted(
                """
                - turn: 1
                  tool_calls: [{name: leak, arguments: {}}]
                - turn: 2
                  reply: "{{ tool_result }} and {{ 'sk-proj-' ~ 'abcdefghijklmnopqrstuvwx' }}"
                """
            ),
            "agent.yaml": agent("[leak]").replace(
                "  vars: {who: people}", "  vars: {who: '${env:DEMO_SECRET}'}"
            ),
        },
    )
    result = run(repo, "tell me")
    assert result.ok
    # the secret was resolved for the tool but is redacted everywhere it is written
    data = b"".join(p.read_bytes() for p in (repo / ".afctl").glob("logs.db*"))
    assert b"hunter2-very-secret" not in data
    assert b"sk-proj-abcdefghijklmnopqrstuvwx" not in data


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(repo):
    with Context(workspace=repo).prompt_log() as log:
        log.conn.execute(
            "INSERT INTO runs (id, kind, target, env, status, started_at, pid, host) "
            "VALUES ('01DEAD', 'agent', 'agent/x', 'default', 'running', 'then', 999999999, ?)",
            [__import__("socket").gethostname()],
        )
        log.conn.commit()
    with Context(workspace=repo).prompt_log() as log:
        assert log.run("01DEAD").status == "interrupted"


def test_run_errors_are_usage_errors_before_anything_runs(repo):
    with pytest.raises(UsageError, match="not defined"):
        Context(workspace=repo).run("agent/nobody", "hi", paths=[str(repo)])
    with pytest.raises(UsageError, match="runs agents"):
        Context(workspace=repo).run("tool/word_count", "hi", paths=[str(repo)])


def test_logs_are_a_separate_wal_database(repo):
    write_repo(repo, {"model.yaml": scripted("- reply: ok"), "agent.yaml": agent()})
    run(repo, "hi")
    connection = sqlite3.connect(repo / ".afctl" / "logs.db")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = {r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "run_payloads", "events", "event_payloads", "sessions"} <= tables
    assert not (repo / ".afctl" / "state.db").exists()


def test_a_model_call_latency_leaves_out_building_the_client(tmp_path):
    """Issue 15 #8: turn 1 was timed with the SDK client's set-up in it."""
    import asyncio
    import time

    from afctl.providers.offline import EchoProvider
    from afctl.runtime.agent import AgentRun, LogRecorder, RunHooks
    from afctl.runtime.environment import Catalog, RunEnvironment

    def slow_to_build(config, environment):  # type: ignore[no-untyped-def]
        time.sleep(1.0)  # importing an SDK and building its client, exaggerated
        return EchoProvider()

    catalog = Catalog.of([("Agent", "a", {"spec": {"model": "local/echo"}})])
    with Context(workspace=tmp_path).prompt_log() as log:
        run = AgentRun("a", RunEnvironment(tmp_path, catalog=catalog), LogRecorder(log),
                       hooks=RunHooks(provider_factory=slow_to_build))  # fmt: skip
        result = asyncio.run(run.run("hi"))
        (call,) = [e for e in log.events(result.run_id) if e.type == "model_call"]
    assert result.ok and call.latency_ms is not None
    assert call.latency_ms < 1000  # the answer is immediate; the 1 s build is not in it

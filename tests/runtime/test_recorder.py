"""The recorder interface: a run records the same events whether it goes to the prompt log or
to memory, and the in-memory record is redacted like the log."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from afctl.context import Context
from afctl.manifests.catalog import Catalog
from afctl.runtime.agent import AgentRun, LogRecorder, MemoryRecorder, RunRequest
from afctl.runtime.environment import RunEnvironment
from afctl.safety.secrets import Secrets
from afctl.testing import write_repo

TOOLS = '''
def word_count(text: str) -> int:
    """Count words.

    Args:
        text: The text.
    """
    return len(text.split())
'''

MANIFESTS = """\
apiVersion: afctl/v1
kind: Model
metadata: {name: script}
spec:
  provider: local
  model: scripted
  script:
    rules:
      - contains: count
        tool_calls: [{name: word_count, arguments: {text: "{{ input }}"}}]
      - after_tool: word_count
        reply: "{{ tool_result }} words"
    default: "hello again"
---
apiVersion: afctl/v1
kind: Tool
metadata: {name: word_count}
spec:
  type: python
  entrypoint: helpers.tools:word_count
---
apiVersion: afctl/v1
kind: Agent
metadata: {name: helper}
spec:
  model: script
  instructions: You help {{ vars.who }}.
  vars: {who: people}
  tools: [word_count]
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_repo(
        tmp_path,
        {
            "helpers/__init__.py": "",
            "helpers/tools.py": TOOLS,
            "agents.yaml": MANIFESTS,
        },
    )


def environment(repo: Path, secrets: Secrets | None = None) -> RunEnvironment:
    loaded = Context(workspace=repo).load(str(repo))
    catalog = Catalog.of((m.kind, m.name, m.data) for m in loaded)
    return RunEnvironment(repo, secrets or Secrets(), catalog)


def without_timing(narrow: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in narrow.items() if k != "latency_ms"}


def test_memory_and_the_prompt_log_record_the_same_run(repo: Path) -> None:
    memory = MemoryRecorder()
    remembered = asyncio.run(
        AgentRun("helper", environment(repo), memory).run("count these four words")
    )
    with Context(workspace=repo).prompt_log() as log:
        logged = asyncio.run(
            AgentRun("helper", environment(repo), LogRecorder(log)).run("count these four words")
        )
        log.flush()
        on_disk = list(log.events(logged.run_id))
    assert remembered.output == logged.output == "4 words"
    assert memory.kinds(remembered.run_id) == [e.type for e in on_disk]
    assert memory.kinds(remembered.run_id) == ["model_call", "tool_call", "model_call"]
    kept = [payload for run, _, _, payload, _ in memory.events if run == remembered.run_id]
    for in_memory, event in zip(kept, on_disk, strict=True):
        for key in ("request", "response", "result", "arguments"):
            assert in_memory.get(key) == event.payload.get(key)
    run = memory.runs[remembered.run_id]
    assert run["status"] == "succeeded" and run["output"] == "4 words" and run["turns"] == 2
    assert run["revision_hash"] in memory.revisions


def test_a_session_in_memory_carries_the_conversation_on(repo: Path) -> None:
    memory = MemoryRecorder()
    request = RunRequest(session="s1")
    first = asyncio.run(AgentRun("helper", environment(repo), memory, request).run("count a b"))
    second = asyncio.run(AgentRun("helper", environment(repo), memory, request).run("hi"))
    assert first.ok and second.ok
    roles = [m["role"] for m in memory.sessions["s1"]]
    assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    (call,) = [p for run, _, kind, p, _ in memory.events if run == second.run_id
               and kind == "model_call"]  # fmt: skip
    sent = [m["content"] for m in call["request"]["messages"]]
    assert "count a b" in sent and sent[-1] == "hi"  # the first exchange went with it


def test_what_memory_keeps_is_redacted(repo: Path) -> None:
    secrets = Secrets(variables={"token": "tok-0123456789-secret"})
    secrets.remember("tok-0123456789-secret")
    memory = MemoryRecorder()
    request = RunRequest(variables={"token": "tok-0123456789-secret"})
    result = asyncio.run(
        AgentRun("helper", environment(repo, secrets), memory, request).run(
            "count tok-0123456789-secret"
        )
    )
    assert result.ok
    kept = repr((memory.runs, memory.events, memory.revisions))
    assert "tok-0123456789-secret" not in kept
    assert "count" in memory.runs[result.run_id]["input"]


def test_a_finished_run_is_freed_at_once(repo: Path) -> None:
    """No reference cycles between a run and its parts: an eval makes thousands of runs, and
    each is freed when it ends, not when the cycle collector next runs."""
    import gc
    import weakref

    run = AgentRun("helper", environment(repo), MemoryRecorder())
    assert asyncio.run(run.run("count these four words")).ok
    gc.disable()
    try:
        gone = weakref.ref(run)
        del run
        assert gone() is None
    finally:
        gc.enable()

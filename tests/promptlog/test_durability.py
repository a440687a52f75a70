"""The prompt log under failure: a killed run leaves its finished steps readable and is marked
interrupted; a commit that fails for a passing reason (a lock) loses nothing."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.promptlog.store import PromptLog
from afctl.testing import write_repo
from tests.postgres import elsewhere
from tests.runtime.test_agent_offline import TOOLS_PY, agent, scripted, tool

HANG_PY = '''
def hang() -> str:
    """Never finishes in time."""
    import time
    time.sleep(120)
    return "done"
'''


def _turn_one_committed(workspace: Path) -> bool:
    return bool(elsewhere(workspace, "SELECT type, turn FROM events "
                                     "WHERE type = 'tool_call' AND turn = 1"))  # fmt: skip


@pytest.mark.usefixtures("backend")
def test_a_killed_run_keeps_its_finished_steps_and_is_marked_interrupted(tmp_path: Path) -> None:
    repo = write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "helpers/__init__.py": "",
            "helpers/tools.py": TOOLS_PY + HANG_PY,
            "tools.yaml": tool("word_count") + "---\n" + tool("hang", timeout=300),
            "model.yaml": scripted(
                """
                - turn: 1
                  tool_calls: [{name: word_count, arguments: {text: "{{ input }}"}}]
                - turn: 2
                  tool_calls: [{name: hang, arguments: {}}]
                """
            ),
            "agent.yaml": agent("[word_count, hang]"),
        },
    )
    process = subprocess.Popen(
        [sys.executable, "-c", "from afctl.cli.main import main; main()",
         "run", "-f", ".", "agent/helper", "count a b c"],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        # the run is still going (its second tool hangs), yet its first turn shows up
        while not _turn_one_committed(repo / ".afctl"):
            assert process.poll() is None, "the run ended on its own"
            assert time.monotonic() < deadline, "the first turn never reached the log"
            time.sleep(0.05)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    with Context(workspace=repo).prompt_log() as log:
        (record,) = log.runs()
        assert record.status == "interrupted"
        steps = list(log.events(record.id))
        assert [(e.type, e.turn) for e in steps][:2] == [("model_call", 1), ("tool_call", 1)]
        assert steps[1].payload["result"] == "4"
        assert log.payload(record.id)["input"] == "count a b c"


def test_a_commit_blocked_by_a_lock_keeps_the_writes_for_the_next_one(tmp_path: Path) -> None:
    log = PromptLog.open(tmp_path)
    log.conn.execute("PRAGMA busy_timeout = 50")  # fail fast instead of waiting 10 s
    blocker = sqlite3.connect(tmp_path / "logs.db", isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    run = {"id": "01RUN", "kind": "agent", "target": "agent/a", "env": "default"}
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        log.start_run(run, "hello", {}, str)  # no event loop: committed at once
    blocker.execute("ROLLBACK")
    blocker.close()
    log.flush()
    assert log.run("01RUN").status == "running"
    assert log.payload("01RUN")["input"] == "hello"
    # a write that can never succeed is not kept: it would block every later commit
    with pytest.raises(sqlite3.IntegrityError):
        log.start_run(run, "again", {}, str)
    log.start_run({**run, "id": "01NEXT"}, "next", {}, str)
    assert {r.id for r in log.runs()} == {"01NEXT", "01RUN"}
    log.close()

"""The prompt log's concerns one by one, on real SQLite files and on PostgreSQL: grouped
commits, runs and events, sessions, evals, trigger firings, maintenance and migrations."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from afctl.errors import UsageError
from afctl.promptlog.migrations import log_migrations
from afctl.promptlog.store import PromptLog
from afctl.promptlog.writer import COMMIT_DELAY_S
from afctl.storage.settings import StorageSettings
from tests.postgres import elsewhere

pytestmark = pytest.mark.usefixtures("backend")  # every test on SQLite and PostgreSQL

SECRET = "sk-test-0123456789abcdef"


def open_log(workspace: Path) -> PromptLog:
    """The workspace's prompt log where the environment puts it (see the `backend` fixture)."""
    return PromptLog.open(workspace, StorageSettings.from_env())


def redact(text: str) -> str:
    return text.replace(SECRET, "[REDACTED]")


def start(log: PromptLog, run_id: str, status_at: str | None = None) -> None:
    run = {"id": run_id, "kind": "agent", "target": "agent/a", "agent": "a", "env": "default"}
    if status_at:
        run["started_at"] = status_at
    log.start_run(run, f"input of {run_id}", {}, redact)


def committed_runs(path: Path) -> set[str]:
    """The runs another connection sees: what is committed."""
    return {r[0] for r in elsewhere(path, "SELECT id FROM runs")}


def test_writes_in_a_loop_are_grouped_and_on_disk_within_the_delay(tmp_path: Path) -> None:
    async def scenario() -> tuple[set[str], set[str]]:
        with open_log(tmp_path) as log:
            start(log, "01A")
            log.record_event("01A", 1, "model_call", {"x": 1}, redact, turn=1)
            before = committed_runs(tmp_path)
            await asyncio.sleep(COMMIT_DELAY_S * 3)
            return before, committed_runs(tmp_path)

    before, after = asyncio.run(scenario())
    assert before == set()  # grouped: nothing committed at once inside a loop
    assert after == {"01A"}


def test_an_event_payload_is_redacted_and_unknown_columns_are_refused(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        start(log, "01A")
        kept = log.record_event("01A", 1, "tool_call", {"result": SECRET}, redact, tool="t")
        with pytest.raises(ValueError, match="not event columns: colour"):
            log.record_event("01A", 2, "tool_call", {}, redact, colour="red")
        (event,) = log.events("01A")
    assert SECRET not in kept and event.payload == {"result": "[REDACTED]"}
    assert event.tool == "t" and event.seq == 1


def test_a_run_is_found_by_a_unique_prefix_only(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        start(log, "01ABC")
        start(log, "01ABD")
        assert log.run("01ABC").id == "01ABC"
        with pytest.raises(UsageError, match="more than one run"):
            log.run("01AB")
        with pytest.raises(UsageError, match="no run"):
            log.run("02")


def test_a_session_returns_its_last_messages_in_order(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        sessions = log.sessions
        sessions.append("s", "a", "01A", [{"role": "user", "content": "one"}], redact)
        sessions.append("s", "a", "01B", [{"role": "assistant", "content": SECRET},
                                          {"role": "user", "content": "three"}], redact)  # fmt: skip
        sessions.append("other", "a", "01C", [{"role": "user", "content": "elsewhere"}], redact)
        assert [m["content"] for m in sessions.messages("s", 10)] == [
            "one", "[REDACTED]", "three"
        ]  # fmt: skip
        assert [m["content"] for m in sessions.messages("s", 2)] == ["[REDACTED]", "three"]
        assert sessions.messages("nobody", 5) == []


def summary(eval_id: str, suite: str = "s") -> dict[str, object]:
    return {"eval_id": eval_id, "suite": suite, "agent": "a", "pass_rate": 0.5, "passed": False}


def test_evals_are_found_by_last_or_prefix_and_give_their_case_results(tmp_path: Path) -> None:
    case = {"case_id": "c1", "variant": "default", "run_id": "01A", "score": 1.0,
            "assertions": []}  # fmt: skip
    with open_log(tmp_path) as log:
        evals = log.evals
        with pytest.raises(UsageError, match="has not been evaluated yet"):
            evals.resolve("last", "s")
        evals.save(summary("01EVA"), [{**case, "repeat": 0, "passed": True},
                                      {**case, "repeat": 1, "passed": False}])  # fmt: skip
        evals.save(summary("01EVB"), [])
        evals.save(summary("01EVC", suite="t"), [])
        assert evals.resolve("last", "s") in {"01EVA", "01EVB"}
        assert evals.resolve("01EVC", "s") == "01EVC"
        with pytest.raises(UsageError, match="more than one eval"):
            evals.resolve("01EV", "s")
        assert evals.case_results("01EVA") == {("c1", "default"): [True, False]}


def test_an_occurrence_is_claimed_by_one_process_only(tmp_path: Path) -> None:
    with open_log(tmp_path) as first, open_log(tmp_path) as second:
        assert first.trigger_firings.claim("nightly", "2026-12-05T00:00")
        assert not second.trigger_firings.claim("nightly", "2026-12-05T00:00")
        assert second.trigger_firings.claim("nightly", "2026-12-06T00:00")


def test_prune_keeps_running_runs_and_the_revisions_still_used(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        for run_id in ("01OLD", "01LIVE", "01NEW"):
            start(log, run_id, "2026-01-01T00:00:00.000Z" if run_id != "01NEW" else None)
        for run_id in ("01OLD", "01NEW"):
            log.finish_run(run_id, {"status": "succeeded"}, "ok", {}, redact)
        log.store_revision("old-hash", "agent/a", {"Agent": {}}, redact)
        log.flush()
        assert log.maintenance.prune("2026-06-01T00:00:00.000Z") == 1
        assert {r.id for r in log.runs()} == {"01LIVE", "01NEW"}
        with pytest.raises(UsageError, match="not in the prompt log"):
            log.revision("old-hash")  # no run uses it any more
        sizes = log.maintenance.table_sizes()
        assert sizes["runs"][1] == 2 and log.maintenance.file_size() > 0


@pytest.mark.sqlite_only  # PostgreSQL: tests/storage/test_postgres.py
def test_a_new_log_is_migrated_and_reopening_migrates_nothing(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        assert not log_migrations.pending(log.sql)
        applied = list(log.db["_sqlite_migrations"].rows)
    with open_log(tmp_path) as log:
        assert list(log.db["_sqlite_migrations"].rows) == applied


@pytest.mark.sqlite_only  # a log in memory
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=6))
def test_any_message_text_round_trips_through_a_session(tmp_path: Path, texts: list[str]) -> None:
    with PromptLog.in_memory() as log:
        messages = [{"role": "user", "content": text} for text in texts]
        log.sessions.append("s", "a", "01A", messages, str)
        assert log.sessions.messages("s", len(texts)) == messages


def test_last_is_the_latest_run_started_from_outside(tmp_path: Path) -> None:
    with open_log(tmp_path) as log:
        with pytest.raises(UsageError, match="there are no runs yet"):
            log.run("last")
        start(log, "01A", "2026-12-01T00:00:00.000Z")
        start(log, "01B", "2026-12-02T00:00:00.000Z")
        child = {"id": "01C", "kind": "agent", "target": "agent/a", "env": "default",
                 "parent_id": "01B", "started_at": "2026-12-03T00:00:00.000Z"}  # fmt: skip
        log.start_run(child, "a step", {}, redact)
        assert log.run("last").id == "01B"  # not its workflow step, started after it

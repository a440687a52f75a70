"""Numbered, append-only migrations of the prompt log (`logs.db`, or its PostgreSQL
database). Never edit a shipped migration: add one. On SQLite they run inside the log's own
`BEGIN IMMEDIATE`, so two processes opening an old log at once cannot both migrate it; see
`afctl.storage.schema` for PostgreSQL."""

from __future__ import annotations

from typing import Any

from afctl.storage.schema import MigrationSet

log_migrations = MigrationSet("afctl-logs")


@log_migrations("0001_initial")
def _initial(db: Any) -> None:
    db["runs"].create(
        {
            "id": str, "kind": str, "target": str, "agent": str, "revision_hash": str,
            "env": str, "status": str, "model": str, "session_id": str, "parent_id": str,
            "replay_of": str, "eval_id": str, "started_at": str, "ended_at": str,
            "latency_ms": float, "turns": int, "tool_calls": int, "input_tokens": int,
            "output_tokens": int, "cost_usd": float, "error_type": str, "error": str,
            "pid": int, "host": str, "is_replay": int,
        },
        pk="id",
    )  # fmt: skip
    db["runs"].create_index(["started_at"])
    db["runs"].create_index(["agent", "started_at"])
    db["runs"].create_index(["status"])
    db["run_payloads"].create(
        {"run_id": str, "input": str, "output": str, "vars": str, "details": str}, pk="run_id"
    )
    db["events"].create(
        {
            "run_id": str, "seq": int, "type": str, "at": str, "turn": int, "model": str,
            "tool": str, "status": str, "latency_ms": float, "input_tokens": int,
            "output_tokens": int, "cost_usd": float,
        },
        pk=("run_id", "seq"),
    )  # fmt: skip
    db["event_payloads"].create({"run_id": str, "seq": int, "payload": str}, pk=("run_id", "seq"))
    db["revisions"].create(
        {"hash": str, "target": str, "bundle": str, "created_at": str}, pk="hash"
    )
    db["sessions"].create({"id": str, "agent": str, "created_at": str, "updated_at": str}, pk="id")
    db["session_messages"].create(
        {"session_id": str, "seq": int, "run_id": str, "message": str}, pk=("session_id", "seq")
    )


@log_migrations("0002_run_labels")
def _run_labels(db: Any) -> None:
    db["runs"].add_column("labels", str)  # the agent's metadata.labels, as JSON


@log_migrations("0003_evals")
def _evals(db: Any) -> None:
    db["eval_records"].create(
        {"id": str, "suite": str, "agent": str, "started_at": str, "pass_rate": float,
         "passed": int, "summary": str},
        pk="id",
    )  # fmt: skip
    db["eval_records"].create_index(["suite", "started_at"])
    db["eval_cases"].create(
        {"eval_id": str, "case_id": str, "variant": str, "repeat": int, "run_id": str,
         "passed": int, "score": float, "assertions": str},
        pk=("eval_id", "case_id", "variant", "repeat"),
    )  # fmt: skip


@log_migrations("0004_response_cache")
def _response_cache(db: Any) -> None:
    # key: a hash of every input of a model call; inputs: those inputs, for --explain-cache
    db["response_cache"].create(
        {"key": str, "messages": str, "inputs": str, "response": str, "created_at": str},
        pk="key",
    )
    db["response_cache"].create_index(["messages"])


@log_migrations("0005_trigger_firings")
def _trigger_firings(db: Any) -> None:
    # one row per scheduled occurrence that fired: two `afctl serve` never both run it
    db["trigger_firings"].create(
        {"key": str, "trigger": str, "occurrence": str, "fired_at": str}, pk="key"
    )


@log_migrations("0006_run_workers")
def _run_workers(db: Any) -> None:
    # which worker ran a run (afctl worker's name), and when it last said it still does: a
    # redelivered task whose run has a fresh heartbeat leaves it to that worker
    db["runs"].add_column("worker", str)
    db["runs"].add_column("heartbeat_at", str)

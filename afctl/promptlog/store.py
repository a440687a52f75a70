"""The prompt log, `.afctl/logs.db`: every run and every step of it, written as it happens.

Kept apart from `state.db` so it can be pruned, vacuumed and exported without touching state.
Each step of a run is one event: a model call (the request with its messages, tools and params,
and the response with usage, latency and finish reason) or a tool call (arguments and result),
plus retries, fallbacks and errors. Metrics live in narrow tables (`runs`, `events`) and the
large payloads (messages, tool arguments and results) in their own (`run_payloads`,
`event_payloads`): aggregates over millions of runs then read only the columns they need.
Every payload passes through the run's redactor before it is written. A run left `running` by
a process that died is marked `interrupted` the next time the log is opened.

The log is split by concern: `writer` (the connection and its grouped commits), this module
(runs, their events and revisions), `sessions`, `evals`, `trigger_firings` and `maintenance`,
each reached from a `PromptLog` (`log.sessions.append(...)`); `migrations` holds the schema.
"""

from __future__ import annotations

import functools
import json
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.errors import UsageError
from afctl.ids import utc_now
from afctl.promptlog.evals import EvalRecords
from afctl.promptlog.maintenance import Maintenance
from afctl.promptlog.sessions import Sessions
from afctl.promptlog.trigger_firings import TriggerFirings
from afctl.promptlog.writer import COMMIT_DELAY_S, LOG_FILE, NARROW_COLUMNS, LogWriter, Redact
from afctl.storage.sql import Sql

__all__ = ["COMMIT_DELAY_S", "LOG_FILE", "STATUSES", "EventRecord", "PromptLog", "RunRecord"]

LATEST = "last"
"""Stands for the latest run wherever a run id is asked for."""
STATUSES = ("running", "succeeded", "failed", "blocked", "interrupted", "awaiting_approval")


@dataclass(frozen=True)
class RunRecord:
    """A run's row, as `afctl runs` lists it."""

    id: str
    kind: str
    target: str
    agent: str | None
    revision_hash: str | None
    env: str
    status: str
    model: str | None
    session_id: str | None
    parent_id: str | None
    replay_of: str | None
    eval_id: str | None
    started_at: str
    ended_at: str | None
    latency_ms: float | None
    turns: int | None
    tool_calls: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    error_type: str | None
    error: str | None
    pid: int | None
    host: str | None
    is_replay: int | None
    labels: str | None = None
    worker: str | None = None
    """The `afctl worker` that ran it (None: run in the process that started it)."""
    heartbeat_at: str | None = None
    """When its worker last said it still runs it."""
    input: str | None = None
    """The start of its input (only in listings)."""

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class EventRecord:
    seq: int
    type: str
    at: str
    turn: int | None
    model: str | None
    tool: str | None
    status: str | None
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    payload: dict[str, Any]


_NARROW = frozenset(NARROW_COLUMNS)


class PromptLog(LogWriter):
    """The prompt log: runs, their events and the revisions they used; the other concerns
    hang off it (`sessions`, `evals`, `trigger_firings`, `maintenance`)."""

    def __init__(self, sql: Sql, path: Path | None = None) -> None:
        super().__init__(sql, path)
        self._stored_revisions: set[str] = set()
        self.sessions = Sessions(self)
        self.evals = EvalRecords(self)
        self.trigger_firings = TriggerFirings(self)
        self.maintenance = Maintenance(self)

    def opened(self) -> None:
        self.mark_interrupted()

    # -- writing a run ---------------------------------------------------------------------

    def mark_interrupted(self) -> int:
        """Mark runs left `running` by processes of this host that no longer exist."""
        host = _hostname()
        rows = self.sql.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", [host]
        ).fetchall()
        gone = [run_id for run_id, pid in rows if pid is not None and not _alive(pid)]
        if gone:
            self.sql.executemany(
                "UPDATE runs SET status = 'interrupted', error_type = 'interrupted', "
                "error = 'the process running it stopped' WHERE id = ?",
                [(run_id,) for run_id in gone],
            )
        return len(gone)

    def store_revision(
        self, digest: str, target: str, bundle: dict[str, Any], redact: Redact
    ) -> None:
        if digest in self._stored_revisions:
            return
        self._stored_revisions.add(digest)
        self.write(
            "INSERT INTO revisions (hash, target, bundle, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [digest, target, redact(json.dumps(bundle)), utc_now()],
        )

    def start_run(
        self, run: dict[str, Any], input_text: str, variables: dict[str, Any], redact: Redact
    ) -> None:
        row = {
            **run,
            "status": "running",
            "started_at": run.get("started_at") or utc_now(),
            "pid": os.getpid(),
            "host": _hostname(),
        }
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        payload = [run["id"], redact(input_text), redact(json.dumps(variables))]

        def write(connection: Sql) -> None:
            connection.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", list(row.values()))
            connection.execute(
                "INSERT INTO run_payloads (run_id, input, vars) VALUES (?, ?, ?)", payload
            )

        self.submit(write, now=False)

    def record_event(
        self,
        run_id: str,
        seq: int,
        kind: str,
        payload: dict[str, Any],
        redact: Redact,
        **narrow: Any,
    ) -> str:
        """Record an event (committed within COMMIT_DELAY_S); `narrow` sets its metric
        columns. Returns the payload as stored: redacted JSON."""
        unknown = narrow.keys() - _NARROW
        if unknown:
            raise ValueError(f"not event columns: {', '.join(sorted(unknown))}")
        row = (run_id, seq, kind, utc_now(), *(narrow.get(c) for c in NARROW_COLUMNS))
        text = redact(json.dumps(payload, ensure_ascii=False, default=str))
        self.add_event(row, (run_id, seq, text))
        return text

    def finish_run(
        self,
        run_id: str,
        totals: dict[str, Any],
        output: str | None,
        details: dict[str, Any],
        redact: Redact,
        *,
        now: bool = True,
    ) -> None:
        """Record how a run ended: on disk before this returns (`now`), or within
        COMMIT_DELAY_S with other writes (an eval's many short runs)."""
        if totals.get("error"):
            totals = {**totals, "error": redact(str(totals["error"]))}
        assignments = ", ".join(f"{column} = ?" for column in totals)
        values = [*totals.values(), utc_now(), run_id]
        payload = [None if output is None else redact(output), redact(json.dumps(details)), run_id]

        def write(connection: Sql) -> None:
            connection.execute(f"UPDATE runs SET {assignments}, ended_at = ? WHERE id = ?", values)
            connection.execute(
                "UPDATE run_payloads SET output = ?, details = ? WHERE run_id = ?", payload
            )

        self.submit(write, now=now)

    def reopen_run(self, run_id: str) -> None:
        """A paused run (awaiting approval) goes on, in this process."""

        def write(connection: Sql) -> None:
            connection.execute(
                "UPDATE runs SET status = 'running', ended_at = NULL, error = NULL, "
                "error_type = NULL, pid = ?, host = ? WHERE id = ?",
                [os.getpid(), _hostname(), run_id],
            )

        self.submit(write, now=True)

    # -- reading ---------------------------------------------------------------------------

    def runs(
        self,
        *,
        agent: str | None = None,
        status: str | None = None,
        limit: int = 20,
    ) -> list[RunRecord]:
        self.flush()
        where, values = [], []
        if agent is not None:
            where.append("agent = ?")
            values.append(agent)
        if status is not None:
            where.append("status = ?")
            values.append(status)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.sql.query(
            "SELECT runs.*, substr(p.input, 1, 200) AS input FROM runs "
            f"LEFT JOIN run_payloads p ON p.run_id = runs.id {clause} "
            "ORDER BY started_at DESC, id DESC LIMIT ?",
            [*values, limit],
        )
        return [RunRecord(**row) for row in rows]

    def run(self, run_id: str) -> RunRecord:
        """A run by id, by a unique prefix of its id, or `last`: the latest run started from
        outside (not a workflow's step or an agent called as a tool).

        Raises:
            UsageError: no run, or several, match.
        """
        self.flush()
        if run_id == LATEST:
            rows = list(self.sql.query(
                "SELECT * FROM runs WHERE parent_id IS NULL ORDER BY started_at DESC, id DESC "
                "LIMIT 1"))  # fmt: skip
            if not rows:
                raise UsageError("there are no runs yet", hint='afctl run agent/NAME "input"')
            return RunRecord(**rows[0])
        rows = self.sql.query("SELECT * FROM runs WHERE id = ?", [run_id])  # the key: at once
        if not rows:
            rows = self.sql.query("SELECT * FROM runs WHERE id LIKE ? LIMIT 2", [run_id + "%"])
        if len(rows) != 1:
            what = "no run" if not rows else "more than one run"
            raise UsageError(f"{what} matches {run_id!r}", hint="afctl runs lists recent runs")
        return RunRecord(**rows[0])

    def revision(self, digest: str) -> dict[str, Any]:
        """The resources a run used, as recorded under their content hash.

        Raises:
            UsageError: the revision is not in this log.
        """
        self.flush()
        row = self.sql.execute("SELECT bundle FROM revisions WHERE hash = ?", [digest]).fetchone()
        if row is None:
            raise UsageError(f"revision {digest[:12]} is not in the prompt log")
        bundle: dict[str, Any] = json.loads(row[0])
        return bundle

    def payload(self, run_id: str) -> dict[str, Any]:
        self.flush()
        row = self.sql.execute(
            "SELECT input, output, vars, details FROM run_payloads WHERE run_id = ?", [run_id]
        ).fetchone()
        if row is None:
            return {}
        return {
            "input": row[0],
            "output": row[1],
            "vars": json.loads(row[2] or "{}"),
            "details": json.loads(row[3] or "{}"),
        }

    def events(self, run_id: str, after: int = 0) -> Iterator[EventRecord]:
        """The run's events in order (those numbered past `after`)."""
        self.flush()
        rows = self.sql.execute(
            "SELECT e.seq, e.type, e.at, e.turn, e.model, e.tool, e.status, e.latency_ms, "
            "e.input_tokens, e.output_tokens, e.cost_usd, p.payload FROM events e "
            "LEFT JOIN event_payloads p ON p.run_id = e.run_id AND p.seq = e.seq "
            "WHERE e.run_id = ? AND e.seq > ? ORDER BY e.seq",
            [run_id, after],
        )
        for row in rows:
            (
                seq,
                kind,
                at,
                turn,
                model,
                tool,
                status,
                latency,
                tokens_in,
                tokens_out,
                cost,
                payload,
            ) = row
            yield EventRecord(
                seq, kind, at, turn, model, tool, status, latency, tokens_in, tokens_out, cost,
                json.loads(payload or "{}"),
            )  # fmt: skip


@functools.cache
def _hostname() -> str:
    return socket.gethostname()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

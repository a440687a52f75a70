"""The prompt log, `.afctl/logs.db`: every run and every step of it, written as it happens.

Kept apart from `state.db` so it can be pruned, vacuumed and exported without touching state.
Each step is committed as soon as it is complete: a model request together with its response,
a tool call with its result. No transaction stays open while a model or a tool works, so
several processes can log at once; a crash loses at most the step that was under way.
Metrics live in narrow tables (`runs`, `events`) and the large payloads (messages, tool
arguments and results) in their own (`run_payloads`, `event_payloads`): aggregates over
millions of runs then read only the columns they need. Every payload passes through the run's
redactor before it is written. A run left `running` by a process that died is marked
`interrupted` the next time the log is opened.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils.migrations import Migrations

from afctl.errors import UsageError
from afctl.ids import utc_now

LOG_FILE = "logs.db"
STATUSES = ("running", "succeeded", "failed", "blocked", "interrupted")
log_migrations = Migrations("afctl-logs")


@log_migrations(name="0001_initial")
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


Redact = Callable[[str], str]
Work = Callable[[sqlite3.Connection], None]


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, timeout=10, check_same_thread=False)
    connection.execute("PRAGMA busy_timeout = 10000")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    # checkpoint (and fsync) every ~16 MB of log rather than every 4 MB: runs write often
    connection.execute("PRAGMA wal_autocheckpoint = 4000")
    return connection


class PromptLog:
    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        import sqlite_utils

        self.path = path
        self.conn = connection
        self.db = sqlite_utils.Database(connection)
        self._stored_revisions: set[str] = set()
        self._deferred: list[Work] = []

    def _submit(self, work: Work, *, defer: bool = False) -> None:
        """Write now (with anything deferred before, in one transaction), or later."""
        self._deferred.append(work)
        if not defer:
            self.flush()

    def flush(self) -> None:
        """Write and commit every deferred write."""
        if not self._deferred:
            return
        pending, self._deferred = self._deferred, []
        try:
            for work in pending:
                work(self.conn)
        except BaseException:
            self.conn.rollback()
            raise
        self.conn.commit()

    @classmethod
    def open(cls, workspace: Path) -> PromptLog:
        workspace.mkdir(parents=True, exist_ok=True)
        path = workspace / LOG_FILE
        connection = _connect(path)
        log = cls(path, connection)
        if log_migrations.pending(log.db):
            connection.execute("BEGIN IMMEDIATE")
            try:
                log_migrations.apply(log.db)
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        log.mark_interrupted()
        return log

    def close(self) -> None:
        self.flush()
        self.conn.close()

    def __enter__(self) -> PromptLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _write(self, sql: str, values: list[Any] | tuple[Any, ...]) -> None:
        def write(connection: sqlite3.Connection) -> None:
            connection.execute(sql, values)

        self._submit(write)

    # -- writing a run ---------------------------------------------------------------------

    def mark_interrupted(self) -> int:
        """Mark runs left `running` by processes of this host that no longer exist."""
        host = socket.gethostname()
        rows = self.conn.execute(
            "SELECT id, pid FROM runs WHERE status = 'running' AND host = ?", [host]
        ).fetchall()
        gone = [run_id for run_id, pid in rows if pid is not None and not _alive(pid)]
        if gone:
            self.conn.executemany(
                "UPDATE runs SET status = 'interrupted', error_type = 'interrupted', "
                "error = 'the process running it stopped' WHERE id = ?",
                [(run_id,) for run_id in gone],
            )
            self.conn.commit()
        return len(gone)

    def store_revision(
        self, digest: str, target: str, bundle: dict[str, Any], redact: Redact
    ) -> None:
        if digest in self._stored_revisions:
            return
        self._stored_revisions.add(digest)
        self._write(
            "INSERT OR IGNORE INTO revisions (hash, target, bundle, created_at) "
            "VALUES (?, ?, ?, ?)",
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
            "host": socket.gethostname(),
        }
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        payload = [run["id"], redact(input_text), redact(json.dumps(variables))]

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", list(row.values()))
            connection.execute(
                "INSERT INTO run_payloads (run_id, input, vars) VALUES (?, ?, ?)", payload
            )

        self._submit(write)

    def record_event(
        self,
        run_id: str,
        seq: int,
        kind: str,
        payload: dict[str, Any],
        redact: Redact,
        *,
        defer: bool = False,
        **narrow: Any,
    ) -> None:
        """Record an event; `defer` holds it until the next write that is not deferred (the
        rest of its step), so a step costs one commit."""
        row = {"run_id": run_id, "seq": seq, "type": kind, "at": utc_now(), **narrow}
        sql = f"INSERT INTO events ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})"
        values = list(row.values())
        text = redact(json.dumps(payload, ensure_ascii=False, default=str))

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(sql, values)
            connection.execute(
                "INSERT INTO event_payloads (run_id, seq, payload) VALUES (?, ?, ?)",
                [run_id, seq, text],
            )

        self._submit(write, defer=defer)

    def finish_run(
        self,
        run_id: str,
        totals: dict[str, Any],
        output: str | None,
        details: dict[str, Any],
        redact: Redact,
    ) -> None:
        if totals.get("error"):
            totals = {**totals, "error": redact(str(totals["error"]))}
        assignments = ", ".join(f"{column} = ?" for column in totals)
        values = [*totals.values(), utc_now(), run_id]
        payload = [None if output is None else redact(output), redact(json.dumps(details)), run_id]

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(f"UPDATE runs SET {assignments}, ended_at = ? WHERE id = ?", values)
            connection.execute(
                "UPDATE run_payloads SET output = ?, details = ? WHERE run_id = ?", payload
            )

        self._submit(write)

    # -- sessions --------------------------------------------------------------------------

    def session_messages(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        self.flush()
        rows = self.conn.execute(
            "SELECT message FROM (SELECT seq, message FROM session_messages WHERE session_id = ? "
            "ORDER BY seq DESC LIMIT ?) ORDER BY seq",
            [session_id, limit],
        ).fetchall()
        return [json.loads(message) for (message,) in rows]

    def append_session(
        self,
        session_id: str,
        agent: str,
        run_id: str,
        messages: list[dict[str, Any]],
        redact: Redact,
    ) -> None:
        now = utc_now()
        texts = [redact(json.dumps(message)) for message in messages]

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO sessions (id, agent, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                [session_id, agent, now, now],
            )
            row = connection.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM session_messages WHERE session_id = ?",
                [session_id],
            ).fetchone()
            start = int(row[0]) + 1
            connection.executemany(
                "INSERT INTO session_messages (session_id, seq, run_id, message) "
                "VALUES (?, ?, ?, ?)",
                [(session_id, start + i, run_id, text) for i, text in enumerate(texts)],
            )

        self._submit(write)

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
        rows = self.db.query(
            f"SELECT * FROM runs {clause} ORDER BY started_at DESC, id DESC LIMIT ?",
            [*values, limit],
        )
        return [RunRecord(**row) for row in rows]

    def run(self, run_id: str) -> RunRecord:
        """A run by id, or by a unique prefix of its id.

        Raises:
            UsageError: no run, or several, match.
        """
        self.flush()
        rows = list(self.db.query("SELECT * FROM runs WHERE id LIKE ? LIMIT 2", [run_id + "%"]))
        if len(rows) != 1:
            what = "no run" if not rows else "more than one run"
            raise UsageError(f"{what} matches {run_id!r}", hint="afctl runs lists recent runs")
        return RunRecord(**rows[0])

    def payload(self, run_id: str) -> dict[str, Any]:
        self.flush()
        row = self.conn.execute(
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

    def events(self, run_id: str) -> Iterator[EventRecord]:
        self.flush()
        rows = self.conn.execute(
            "SELECT e.seq, e.type, e.at, e.turn, e.model, e.tool, e.status, e.latency_ms, "
            "e.input_tokens, e.output_tokens, e.cost_usd, p.payload FROM events e "
            "LEFT JOIN event_payloads p ON p.run_id = e.run_id AND p.seq = e.seq "
            "WHERE e.run_id = ? ORDER BY e.seq",
            [run_id],
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""The prompt log, `.afctl/logs.db`: every run and every step of it, written as it happens.

Kept apart from `state.db` so it can be pruned, vacuumed and exported without touching state.
Each step of a run is one event: a model call (the request with its messages, tools and params,
and the response with usage, latency and finish reason) or a tool call (arguments and result),
plus retries, fallbacks and errors. Writes are committed in groups: whatever a run has written
is on disk within COMMIT_DELAY_S, and all of it when the run ends. So a fast run costs one
commit, a slow one shows its progress as it goes, and a crash loses at most the last 0.1 s.
No transaction stays open while a model or a tool works, so several processes can log at once.
WAL checkpoints (and their fsyncs) run on a background thread, as SQLite advises for
applications that write often, not in the middle of a run.
Metrics live in narrow tables (`runs`, `events`) and the large payloads (messages, tool
arguments and results) in their own (`run_payloads`, `event_payloads`): aggregates over
millions of runs then read only the columns they need. Every payload passes through the run's
redactor before it is written. A run left `running` by a process that died is marked
`interrupted` the next time the log is opened.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.errors import UsageError
from afctl.ids import utc_now
from afctl.promptlog.migrations import log_migrations

LOG_FILE = "logs.db"
COMMIT_DELAY_S = 0.1
"""A run's writes are committed together at most this long after they are made, and all at
once when it ends: a fast run costs one commit, and a crash loses at most the last 0.1 s."""
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


Redact = Callable[[str], str]
Work = Callable[[sqlite3.Connection], None]
EventRow = tuple[tuple[Any, ...], tuple[str, int, str]]
"""An `events` row and its `event_payloads` row."""

_NARROW_COLUMNS = (
    "turn", "model", "tool", "status", "latency_ms", "input_tokens", "output_tokens", "cost_usd"
)  # fmt: skip
_INSERT_EVENT = (
    f"INSERT INTO events (run_id, seq, type, at, {', '.join(_NARROW_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (4 + len(_NARROW_COLUMNS)))})"
)
_INSERT_PAYLOAD = "INSERT INTO event_payloads (run_id, seq, payload) VALUES (?, ?, ?)"


def _connect(path: Path) -> sqlite3.Connection:
    from afctl.sqlite_files import connect

    # autocommit mode: afctl opens every write transaction itself (BEGIN IMMEDIATE)
    connection = connect(path, timeout=10, check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 10000")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = NORMAL")
    # the Checkpointer does it, off the writing thread
    connection.execute("PRAGMA wal_autocheckpoint = 0")
    # a reset WAL is cut back to this size, so one burst of writes does not hold disk forever
    connection.execute(f"PRAGMA journal_size_limit = {64 * 1024 * 1024}")
    return connection


class Checkpointer:
    """Copies the WAL back into the database on a background thread every `every` commits.

    A PASSIVE checkpoint never blocks the writer, and the thread spends its time in SQLite
    (which releases the GIL) waiting for fsync, so runs go on while it works. The WAL between
    two checkpoints holds `every` commits: about 2,000 pages (8 MB) for three-commit runs.
    """

    def __init__(self, path: Path, every: int = 256) -> None:
        self.path = path
        self.every = every
        self._commits = 0
        self._thread: threading.Thread | None = None

    def committed(self) -> None:
        if str(self.path) == ":memory:":
            return
        self._commits += 1
        if self._commits < self.every or (self._thread is not None and self._thread.is_alive()):
            return
        self._commits = 0
        self._thread = threading.Thread(target=self._checkpoint, name="afctl-log-checkpoint")
        self._thread.daemon = True
        self._thread.start()

    def _checkpoint(self) -> None:
        try:
            connection = sqlite3.connect(self.path, timeout=10)
            try:
                connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
            finally:
                connection.close()
        except sqlite3.Error:  # the database is busy or gone: the next round tries again
            pass

    def join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None


class PromptLog:
    def __init__(self, path: Path, connection: sqlite3.Connection) -> None:
        import sqlite_utils

        self.path = path
        self.conn = connection
        self.db = sqlite_utils.Database(connection)
        self._stored_revisions: set[str] = set()
        self._deferred: list[Work] = []
        self._event_rows: list[EventRow] = []
        self._timer: asyncio.TimerHandle | None = None
        self._checkpointer = Checkpointer(path)

    def _submit(self, work: Work | None, *, now: bool) -> None:
        """Commit `work` with everything pending: `now`, or within COMMIT_DELAY_S."""
        if work is not None:
            self._deferred.append(work)
        if now:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no event loop: nothing to batch with
                self.flush()
                return
            self._timer = loop.call_later(COMMIT_DELAY_S, self._flush_on_time)

    def _flush_on_time(self) -> None:
        self._timer = None
        try:
            self.flush()
        except sqlite3.Error:  # kept if worth retrying: the next flush tries again, and raises
            pass

    def flush(self) -> None:
        """Commit every pending write, in one transaction.

        Raises:
            sqlite3.OperationalError: the database is locked, busy or full; the writes stay
                pending for the next flush.
            sqlite3.Error: other failures (the writes are dropped).
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._deferred and not self._event_rows:
            return
        pending, self._deferred = self._deferred, []
        events, self._event_rows = self._event_rows, []
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                if events:  # one statement per table: events depend on nothing else
                    self.conn.executemany(_INSERT_EVENT, [row for row, _ in events])
                    self.conn.executemany(_INSERT_PAYLOAD, [payload for _, payload in events])
                for work in pending:
                    work(self.conn)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError:  # locked, busy, disk full: worth another try
            self._deferred[:0] = pending
            self._event_rows[:0] = events
            raise
        self._checkpointer.committed()

    @classmethod
    def in_memory(cls) -> PromptLog:
        """A prompt log that is never written to disk (offline replay runs in one)."""
        connection = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        log = cls(Path(":memory:"), connection)
        log_migrations.apply(log.db)
        return log

    @classmethod
    def open(cls, workspace: Path) -> PromptLog:
        from afctl.sqlite_files import named_errors
        from afctl.workspace import ensure_workspace

        ensure_workspace(workspace)
        path = workspace / LOG_FILE
        connection = _connect(path)
        try:
            with named_errors(path):
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
        except BaseException:
            connection.close()
            raise
        return log

    def close(self) -> None:
        """Write what is pending and close; closing the last connection checkpoints the WAL."""
        try:
            self.flush()
        finally:
            self._checkpointer.join()
            self.conn.close()

    def __enter__(self) -> PromptLog:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def submit(self, work: Work) -> None:
        """Run `work` on the log's connection in the next grouped commit."""
        self._submit(work, now=False)

    def _write(self, sql: str, values: list[Any] | tuple[Any, ...]) -> None:
        def write(connection: sqlite3.Connection) -> None:
            connection.execute(sql, values)

        self._submit(write, now=False)

    # -- writing a run ---------------------------------------------------------------------

    def mark_interrupted(self) -> int:
        """Mark runs left `running` by processes of this host that no longer exist."""
        host = _hostname()
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
            "host": _hostname(),
        }
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        payload = [run["id"], redact(input_text), redact(json.dumps(variables))]

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(f"INSERT INTO runs ({columns}) VALUES ({marks})", list(row.values()))
            connection.execute(
                "INSERT INTO run_payloads (run_id, input, vars) VALUES (?, ?, ?)", payload
            )

        self._submit(write, now=False)

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
        unknown = narrow.keys() - _NARROW_COLUMNS
        if unknown:
            raise ValueError(f"not event columns: {', '.join(sorted(unknown))}")
        row = (run_id, seq, kind, utc_now(), *(narrow.get(c) for c in _NARROW_COLUMNS))
        text = redact(json.dumps(payload, ensure_ascii=False, default=str))
        self._event_rows.append((row, (run_id, seq, text)))
        self._submit(None, now=False)
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

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(f"UPDATE runs SET {assignments}, ended_at = ? WHERE id = ?", values)
            connection.execute(
                "UPDATE run_payloads SET output = ?, details = ? WHERE run_id = ?", payload
            )

        self._submit(write, now=now)

    def reopen_run(self, run_id: str) -> None:
        """A paused run (awaiting approval) goes on, in this process."""

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE runs SET status = 'running', ended_at = NULL, error = NULL, "
                "error_type = NULL, pid = ?, host = ? WHERE id = ?",
                [os.getpid(), _hostname(), run_id],
            )

        self._submit(write, now=True)

    def claim_occurrence(self, trigger: str, occurrence: str) -> bool:
        """Claim a scheduled occurrence for this process; False when another (or an earlier)
        process already fired it."""
        self.flush()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO trigger_firings (key, trigger, occurrence, fired_at) "
                "VALUES (?, ?, ?, ?)",
                [f"{trigger}@{occurrence}", trigger, occurrence, utc_now()],
            )
            claimed = cursor.rowcount == 1
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return claimed

    # -- evals -----------------------------------------------------------------------------

    def save_eval(self, summary: dict[str, Any], cases: list[dict[str, Any]]) -> None:
        """An eval's record and the result of each case, variant and repeat."""

        def write(connection: sqlite3.Connection) -> None:
            connection.execute(
                "INSERT INTO eval_records (id, suite, agent, started_at, pass_rate, passed, "
                "summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [summary["eval_id"], summary["suite"], summary["agent"], utc_now(),
                 summary["pass_rate"], int(summary["passed"]), json.dumps(summary)],
            )  # fmt: skip
            connection.executemany(
                "INSERT INTO eval_cases (eval_id, case_id, variant, repeat, run_id, passed, "
                "score, assertions) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(summary["eval_id"], c["case_id"], c["variant"], c["repeat"], c["run_id"],
                  int(c["passed"]), c["score"], json.dumps(c["assertions"])) for c in cases],
            )  # fmt: skip

        self._submit(write, now=True)

    def eval_id(self, reference: str, suite: str) -> str:
        """The id of an eval of `suite`: `last`, or an id or unique prefix.

        Raises:
            UsageError: there is none.
        """
        self.flush()
        if reference == "last":
            row = self.conn.execute(
                "SELECT id FROM eval_records WHERE suite = ? ORDER BY started_at DESC, id DESC "
                "LIMIT 1",
                [suite],
            ).fetchone()
            if row is None:
                raise UsageError(f"suite {suite} has not been evaluated yet")
            return str(row[0])
        rows = self.conn.execute(
            "SELECT id FROM eval_records WHERE id LIKE ? LIMIT 2", [reference + "%"]
        ).fetchall()
        if len(rows) != 1:
            raise UsageError(
                f"{'no eval' if not rows else 'more than one eval'} matches {reference!r}"
            )
        return str(rows[0][0])

    def eval_case_results(self, eval_id: str) -> dict[tuple[str, str], list[bool]]:
        """(case, variant) -> pass or fail of each repeat, in an earlier eval."""
        self.flush()
        results: dict[tuple[str, str], list[bool]] = {}
        for case_id, variant, passed in self.conn.execute(
            "SELECT case_id, variant, passed FROM eval_cases WHERE eval_id = ? "
            "ORDER BY case_id, variant, repeat",
            [eval_id],
        ):
            results.setdefault((case_id, variant), []).append(bool(passed))
        return results

    # -- retention -------------------------------------------------------------------------

    def prune(self, before: str, *, keep_failed: bool = False) -> int:
        """Delete runs started before `before` (ISO text), with their events and payloads,
        and cached responses stored before it; returns how many runs. Runs still going are
        kept."""
        self.flush()
        condition = "started_at < ? AND status NOT IN ('running', 'awaiting_approval')"
        if keep_failed:
            condition += " AND status NOT IN ('failed', 'blocked', 'interrupted')"
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute(
                f"CREATE TEMP TABLE doomed AS SELECT id FROM runs WHERE {condition}", [before]
            )
            count = self.conn.execute("SELECT count(*) FROM doomed").fetchone()[0]
            for table, column in (("event_payloads", "run_id"), ("events", "run_id"),
                                  ("run_payloads", "run_id"), ("session_messages", "run_id"),
                                  ("runs", "id")):  # fmt: skip
                self.conn.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT id FROM doomed)")
            self.conn.execute("DROP TABLE doomed")
            self.conn.execute("DELETE FROM response_cache WHERE created_at < ?", [before])
            self.conn.execute(
                "DELETE FROM revisions WHERE hash NOT IN "
                "(SELECT DISTINCT revision_hash FROM runs WHERE revision_hash IS NOT NULL)"
            )
            self.conn.execute("COMMIT")
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        return int(count)

    def vacuum(self) -> None:
        """Give the space of deleted rows back to the file system."""
        self.flush()
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.conn.execute("VACUUM")
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def table_sizes(self) -> dict[str, tuple[int, int]]:
        """Bytes and rows per table (indexes counted with their table)."""
        self.flush()
        sizes: dict[str, int] = {}
        for _name, table, size in self.conn.execute(
            "SELECT d.name, coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d "
            "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY d.name"
        ):
            sizes[table] = sizes.get(table, 0) + int(size)
        tables = [r[0] for r in self.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE '_sqlite%' ORDER BY name")]  # fmt: skip
        return {
            table: (sizes.get(table, 0),
                    self.conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
            for table in tables
        }  # fmt: skip

    def file_size(self) -> int:
        return sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())

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

        self._submit(write, now=True)

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
            "SELECT runs.*, substr(p.input, 1, 200) AS input FROM runs "
            f"LEFT JOIN run_payloads p ON p.run_id = runs.id {clause} "
            "ORDER BY started_at DESC, id DESC LIMIT ?",
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

    def revision(self, digest: str) -> dict[str, Any]:
        """The resources a run used, as recorded under their content hash.

        Raises:
            UsageError: the revision is not in this log.
        """
        self.flush()
        row = self.conn.execute("SELECT bundle FROM revisions WHERE hash = ?", [digest]).fetchone()
        if row is None:
            raise UsageError(f"revision {digest[:12]} is not in the prompt log")
        bundle: dict[str, Any] = json.loads(row[0])
        return bundle

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

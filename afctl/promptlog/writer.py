"""The prompt log's writer: one connection to `.afctl/logs.db` and its grouped commits.

Writes are committed in groups: whatever a run has written is on disk within COMMIT_DELAY_S,
and all of it when the run ends. So a fast run costs one commit, a slow one shows its progress
as it goes, and a crash loses at most the last 0.1 s. No transaction stays open while a model
or a tool works, so several processes can log at once. WAL checkpoints (and their fsyncs) run
on a background thread, as SQLite advises for applications that write often, not in the middle
of a run.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from afctl.promptlog.migrations import log_migrations
from afctl.storage.sql import Sql, SqliteSql

if TYPE_CHECKING:
    from afctl.storage.settings import StorageSettings

LOG_FILE = "logs.db"
COMMIT_DELAY_S = 0.1
"""A run's writes are committed together at most this long after they are made, and all at
once when it ends: a fast run costs one commit, and a crash loses at most the last 0.1 s."""

Redact = Callable[[str], str]
Work = Callable[[Sql], None]
EventRow = tuple[tuple[Any, ...], tuple[str, int, str]]
"""An `events` row and its `event_payloads` row."""

NARROW_COLUMNS = (
    "turn", "model", "tool", "status", "latency_ms", "input_tokens", "output_tokens", "cost_usd"
)  # fmt: skip
"""The metric columns of an event."""
_INSERT_EVENT = (
    f"INSERT INTO events (run_id, seq, type, at, {', '.join(NARROW_COLUMNS)}) "
    f"VALUES ({', '.join('?' * (4 + len(NARROW_COLUMNS)))})"
)
_INSERT_PAYLOAD = "INSERT INTO event_payloads (run_id, seq, payload) VALUES (?, ?, ?)"

W = TypeVar("W", bound="LogWriter")


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


class LogWriter:
    """A connection to the prompt log with grouped commits: `submit` work or `add_event`
    rows, and they are committed together (see the module's doc)."""

    def __init__(self, sql: Sql, path: Path | None = None) -> None:
        self.sql = sql
        self.path = path
        """The SQLite file (None for a PostgreSQL log)."""
        self.where = sql.where
        """The file or database URL (password hidden), for messages."""
        self._deferred: list[Work] = []
        self._event_rows: list[EventRow] = []
        self._timer: asyncio.TimerHandle | None = None
        self._checkpointer = Checkpointer(path) if path is not None else None

    @property
    def conn(self) -> Any:
        """The driver's connection (sqlite3 or psycopg)."""
        return self.sql.conn  # type: ignore[attr-defined]

    @property
    def db(self) -> Any:
        """sqlite-utils over a SQLite log."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

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
        except self.sql.errors:  # kept if worth retrying: the next flush tries again, and raises
            pass

    def flush(self) -> None:
        """Commit every pending write, in one transaction.

        Raises:
            sqlite3.OperationalError, psycopg.OperationalError: the database is locked, busy,
                full or gone; the writes stay pending for the next flush.
            sqlite3.Error, psycopg.Error: other failures (the writes are dropped).
        """
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._deferred and not self._event_rows:
            return
        pending, self._deferred = self._deferred, []
        events, self._event_rows = self._event_rows, []
        try:
            with self.sql.transaction():
                if events:  # one statement per table: events depend on nothing else
                    self.sql.executemany(_INSERT_EVENT, [row for row, _ in events])
                    self.sql.executemany(_INSERT_PAYLOAD, [payload for _, payload in events])
                for work in pending:
                    work(self.sql)
        except self.sql.retryable:  # locked, busy, disk full: worth another try
            self._deferred[:0] = pending
            self._event_rows[:0] = events
            raise
        if self._checkpointer is not None:
            self._checkpointer.committed()

    @classmethod
    def in_memory(cls: type[W]) -> W:
        """A prompt log that is never written to disk (offline replay runs in one)."""
        connection = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        log = cls(SqliteSql(connection, ":memory:"), Path(":memory:"))
        log_migrations.apply(log.sql)
        return log

    @classmethod
    def open(cls: type[W], workspace: Path, settings: StorageSettings | None = None) -> W:
        """The workspace's prompt log: its SQLite file, migrated to the current schema as it
        opens, or the PostgreSQL database `settings` name (migrated by `afctl db migrate`).

        Raises:
            UsageError: the file cannot be opened or migrated (named in the message).
            DatabaseUnavailable: the database cannot be reached, or lacks migrations.
        """
        if settings is not None and settings.log is not None:
            from afctl.storage.schema import check_migrated
            from afctl.storage.settings import LOG_SCHEMA
            from afctl.storage.sql import connect_postgres

            sql = connect_postgres(settings.log, LOG_SCHEMA)
            try:
                check_migrated(log_migrations, sql, settings.log.variable, "prompt log")
                log = cls(sql)
                log.opened()
            except BaseException:
                sql.close()
                raise
            return log
        from afctl.sqlite_files import named_errors
        from afctl.workspace import ensure_workspace

        ensure_workspace(workspace)
        path = workspace / LOG_FILE
        connection = _connect(path)
        try:
            with named_errors(path):
                log = cls(SqliteSql(connection, str(path)), path)
                log_migrations.apply(log.sql)
                log.opened()
        except BaseException:
            connection.close()
            raise
        return log

    def opened(self) -> None:
        """Called once the file is open and migrated."""

    def close(self) -> None:
        """Write what is pending and close; closing the last connection checkpoints the WAL."""
        try:
            self.flush()
        finally:
            if self._checkpointer is not None:
                self._checkpointer.join()
            self.sql.close()

    def __enter__(self: W) -> W:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def submit(self, work: Work, *, now: bool = False) -> None:
        """Run `work` on the log's connection in the next grouped commit (`now`: commit
        before returning)."""
        self._submit(work, now=now)

    def add_event(self, row: tuple[Any, ...], payload: tuple[str, int, str]) -> None:
        """An `events` row and its payload row, inserted with the next grouped commit."""
        self._event_rows.append((row, payload))
        self._submit(None, now=False)

    def write(self, sql: str, values: list[Any] | tuple[Any, ...]) -> None:
        """One statement in the next grouped commit."""

        def work(connection: Sql) -> None:
            connection.execute(sql, values)

        self._submit(work, now=False)

    def transaction(self, work: Callable[[Sql], Any]) -> Any:
        """Run `work` in its own write transaction, now, after what is pending."""
        self.flush()
        with self.sql.transaction():
            return work(self.sql)

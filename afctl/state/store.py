"""The workspace's `state.db`: applied resources per environment, their revisions, the apply
log and the workspace lock.

SQLite in WAL mode with a busy timeout, written through sqlite-utils. Every write happens in
one `BEGIN IMMEDIATE` transaction (the write lock is taken up front, never upgraded from a
read), so a crash or Ctrl-C leaves the previous state intact. The workspace lock is a row that
names its holder; `force_unlock` clears one left behind by a dead process.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.errors import StateConflict, UsageError
from afctl.ids import actor, new_ulid, utc_now
from afctl.storage.sql import Sql

if TYPE_CHECKING:
    from afctl.storage.settings import StorageSettings

STATE_FILE = "state.db"
RESOURCE_COLUMNS = (
    "env", "kind", "name", "revision", "hash", "document", "labels", "source_file", "source_set",
    "protect", "applied_at", "applied_by", "apply_id",
)  # fmt: skip
BUSY_TIMEOUT_S = 10.0
LOCK_SCOPE = "workspace"
LOCK_KEY = 0x61666374  # "afct": the advisory lock key of the workspace lock (PostgreSQL)


class AppliedResource:
    """A resource as applied in one environment."""

    __slots__ = (
        "__dict__",
        "_fetch_document",
        "applied_at",
        "applied_by",
        "apply_id",
        "document_json",
        "env",
        "hash",
        "kind",
        "labels_json",
        "name",
        "protect",
        "revision",
        "source_file",
        "source_set",
    )

    def __init__(
        self, row: dict[str, Any], fetch_document: Callable[[], str] | None = None
    ) -> None:
        self._fetch_document = fetch_document
        self.env: str = row["env"]
        self.kind: str = row["kind"]
        self.name: str = row["name"]
        self.revision: int = row["revision"]
        self.hash: str = row["hash"]
        self.document_json: str | None = row.get("document")
        self.labels_json: str = row["labels"] or "{}"
        self.source_file: str | None = row["source_file"]
        self.source_set: str | None = row["source_set"]
        self.protect = bool(row["protect"])
        self.applied_at: str = row["applied_at"]
        self.applied_by: str = row["applied_by"]
        self.apply_id: str = row["apply_id"]

    @cached_property
    def document(self) -> dict[str, Any]:
        """The applied manifest, decoded (and, for plans, read) on first use: a plan needs
        the documents of changed resources only."""
        if self.document_json is None:
            assert self._fetch_document is not None
            self.document_json = self._fetch_document()
        value: dict[str, Any] = json.loads(self.document_json)
        return value

    @cached_property
    def labels(self) -> dict[str, str]:
        value: dict[str, str] = json.loads(self.labels_json)
        return value

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        """The resource as `afctl get -o json` and the API show it."""
        return {"kind": self.kind, "name": self.name, "env": self.env,
                "revision": self.revision, "hash": self.hash, "labels": self.labels,
                "protect": self.protect, "source_file": self.source_file,
                "source_set": self.source_set, "applied_at": self.applied_at,
                "applied_by": self.applied_by, "apply_id": self.apply_id,
                "document": self.document}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppliedResource:
        """A resource as `to_dict` gave it (a remote client reads the server's answer)."""
        row = {**data, "document": json.dumps(data["document"]),
               "labels": json.dumps(data.get("labels") or {}),
               "protect": int(bool(data.get("protect")))}  # fmt: skip
        return cls(row)


@dataclass(frozen=True)
class Revision:
    """One entry of a resource's history."""

    revision: int
    action: str
    """create, update, delete or rollback."""
    hash: str
    document_json: str | None
    source_file: str | None
    source_set: str | None
    applied_at: str
    applied_by: str
    apply_id: str

    @property
    def document(self) -> dict[str, Any] | None:
        return None if self.document_json is None else json.loads(self.document_json)

    def to_dict(self) -> dict[str, Any]:
        """The revision as `afctl history -o json` and the API show it."""
        return {"revision": self.revision, "action": self.action, "hash": self.hash,
                "applied_at": self.applied_at, "applied_by": self.applied_by,
                "apply_id": self.apply_id, "source_file": self.source_file,
                "source_set": self.source_set, "document": self.document}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Revision:
        document = data.get("document")
        return cls(data["revision"], data["action"], data["hash"],
                   None if document is None else json.dumps(document), data.get("source_file"),
                   data.get("source_set"), data["applied_at"], data["applied_by"],
                   data["apply_id"])  # fmt: skip


@dataclass(frozen=True)
class ApplyRecord:
    id: str
    env: str
    plan_id: str
    serial_before: int
    serial_after: int
    started_at: str
    finished_at: str
    actor: str
    command: str
    source_set: str | None
    creates: int
    updates: int
    deletes: int


@dataclass(frozen=True)
class LockInfo:
    """Who holds the workspace lock."""

    lock_id: str
    pid: int
    host: str
    actor: str
    command: str
    acquired_at: str

    def describe(self) -> str:
        return (
            f"lock {self.lock_id} held by {self.actor} (pid {self.pid} on {self.host}) "
            f"since {self.acquired_at}: {self.command}"
        )

    def holder_is_gone(self) -> bool:
        """True when the holder ran on this host and its process no longer exists."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False


def _name_workspace(sql: Sql) -> None:
    """A new state gets its random id (a plan records it)."""
    sql.insert("meta", [{"key": "workspace_id", "value": new_ulid()}], ignore=True)


class StateStore:
    """An open state: `.afctl/state.db`, or the state's PostgreSQL database. Use
    `StateStore.open(workspace)`; close it when done."""

    def __init__(self, sql: Sql) -> None:
        self.sql = sql
        self.where = sql.where
        """The file or database URL (password hidden), for messages."""

    @classmethod
    def open(
        cls, workspace: Path, *, create: bool = False, settings: StorageSettings | None = None
    ) -> StateStore:
        """Open the state of `workspace`: its SQLite file (migrated as it opens), or the
        PostgreSQL database `settings` name (which `afctl db migrate` migrates).

        Raises:
            UsageError: there is no state file yet and `create` is false.
            DatabaseUnavailable: the database cannot be reached, or lacks migrations.
        """
        if settings is not None and settings.state is not None:
            from afctl.storage.settings import STATE_SCHEMA
            from afctl.storage.sql import connect_postgres

            store = cls(connect_postgres(settings.state, STATE_SCHEMA))
            try:
                from afctl.state.migrations import state_migrations
                from afctl.storage.schema import check_migrated

                check_migrated(state_migrations, store.sql, settings.state.variable, "state")
            except BaseException:
                store.close()
                raise
            return store
        path = workspace / STATE_FILE
        if not path.exists() and not create:
            raise UsageError(
                f"no applied state in {workspace}", hint="run afctl apply -f . to create it"
            )
        from afctl.sqlite_files import connect, named_errors
        from afctl.storage.sql import SqliteSql
        from afctl.workspace import ensure_workspace

        ensure_workspace(workspace)
        connection = connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        try:
            with named_errors(path):
                connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
                connection.execute("PRAGMA journal_mode = WAL")
                connection.execute("PRAGMA synchronous = FULL")
                store = cls(SqliteSql(connection, str(path)))
                store.migrate()
        except BaseException:
            connection.close()
            raise
        return store

    def close(self) -> None:
        self.sql.close()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def conn(self) -> Any:
        """The driver's connection (sqlite3 or psycopg)."""
        return self.sql.conn  # type: ignore[attr-defined]

    # -- transactions and migrations -------------------------------------------------------

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction (on SQLite, holding the write lock from its first statement)."""
        return self.sql.transaction()

    def migrate(self) -> list[str]:
        """Run the pending migrations; returns their names.

        Raises:
            StateConflict: a newer afctl migrated this state.
        """
        from afctl.state.migrations import state_migrations
        from afctl.storage.schema import refuse_newer

        refuse_newer(state_migrations, self.sql)
        return state_migrations.apply(self.sql, then=_name_workspace)

    # -- reading ---------------------------------------------------------------------------

    @cached_property
    def workspace_id(self) -> str:
        """A random id given to the state when it was created (a plan records it)."""
        row = self.sql.execute("SELECT value FROM meta WHERE key = 'workspace_id'").fetchone()
        return str(row[0])

    def serial(self, env: str) -> int:
        """How many applies have changed `env`'s state (0 when it has none yet)."""
        row = self.sql.execute("SELECT serial FROM environments WHERE name = ?", [env]).fetchone()
        return int(row[0]) if row else 0

    def resources(
        self, env: str, *, documents: bool = True
    ) -> dict[tuple[str, str], AppliedResource]:
        """The applied resources of `env`; without `documents`, each is read when first used
        (while this store is open)."""
        if documents:
            rows = self.sql.query(
                "SELECT * FROM resources WHERE env = ? ORDER BY kind, name", [env]
            )
            return {(r["kind"], r["name"]): AppliedResource(r) for r in rows}
        columns = ", ".join(c for c in RESOURCE_COLUMNS if c != "document")
        rows = self.sql.query(f"SELECT {columns} FROM resources WHERE env = ?", [env])
        return {
            (r["kind"], r["name"]): AppliedResource(
                r, self._document_reader(env, r["kind"], r["name"])
            )
            for r in rows
        }

    def _document_reader(self, env: str, kind: str, name: str) -> Callable[[], str]:
        def read() -> str:
            row = self.sql.execute(
                "SELECT document FROM resources WHERE env = ? AND kind = ? AND name = ?",
                [env, kind, name],
            ).fetchone()
            return str(row[0])

        return read

    def documents_of_kind(self, env: str, kind: str) -> dict[str, dict[str, Any]]:
        """The applied documents of one kind, by name."""
        import json

        rows = self.sql.execute(
            "SELECT name, document FROM resources WHERE env = ? AND kind = ? ORDER BY name",
            [env, kind],
        ).fetchall()
        return {name: json.loads(document) for name, document in rows}

    def resource(self, env: str, kind: str, name: str) -> AppliedResource | None:
        rows = list(
            self.sql.query(
                "SELECT * FROM resources WHERE env = ? AND kind = ? AND name = ?",
                [env, kind, name],
            )
        )
        return AppliedResource(rows[0]) if rows else None

    def revisions(self, env: str, kind: str, name: str) -> list[Revision]:
        rows = self.sql.query(
            "SELECT revision, action, hash, document, source_file, source_set, applied_at, "
            "applied_by, apply_id FROM revisions WHERE env = ? AND kind = ? AND name = ? "
            "ORDER BY revision",
            [env, kind, name],
        )
        return [
            Revision(
                r["revision"],
                r["action"],
                r["hash"],
                r["document"],
                r["source_file"],
                r["source_set"],
                r["applied_at"],
                r["applied_by"],
                r["apply_id"],
            )
            for r in rows
        ]

    def applies(self, env: str, limit: int = 20) -> list[ApplyRecord]:
        rows = self.sql.query(
            "SELECT id, env, plan_id, serial_before, serial_after, started_at, finished_at, "
            "actor, command, source_set, creates, updates, deletes FROM applies WHERE env = ? "
            "ORDER BY finished_at DESC, id DESC LIMIT ?",
            [env, limit],
        )
        return [ApplyRecord(**r) for r in rows]

    def apply_record(self, apply_id: str) -> ApplyRecord | None:
        rows = list(
            self.sql.query(
                "SELECT id, env, plan_id, serial_before, serial_after, started_at, finished_at, "
                "actor, command, source_set, creates, updates, deletes FROM applies WHERE id = ?",
                [apply_id],
            )
        )
        return ApplyRecord(**rows[0]) if rows else None

    # -- the workspace lock ----------------------------------------------------------------

    def current_lock(self) -> LockInfo | None:
        row = self.sql.execute(
            "SELECT lock_id, pid, host, actor, command, acquired_at FROM locks WHERE scope = ?",
            [LOCK_SCOPE],
        ).fetchone()
        return LockInfo(*row) if row else None

    def acquire_lock(self, command: str, timeout_s: float) -> LockInfo:
        """Take the workspace lock, waiting up to `timeout_s` for its holder to let go.

        On SQLite the lock is a row written in a write transaction. On PostgreSQL it is also
        an advisory lock of this store's session: whoever holds it has it until they let go
        or their connection ends, so a process that died never leaves the lock behind.

        Raises:
            StateConflict: the lock is still held when the time is up (names the holder).
        """
        mine = LockInfo(new_ulid(), os.getpid(), socket.gethostname(), actor(), command, utc_now())
        deadline = time.monotonic() + max(timeout_s, 0.0)
        shared = self.sql.dialect != "sqlite"
        while True:
            held = None
            if self.sql.advisory_lock(LOCK_KEY):
                try:
                    with self.transaction():
                        held = self.current_lock()
                        if held is not None and shared:  # its session ended: it is gone
                            self.sql.execute("DELETE FROM locks WHERE scope = ?", [LOCK_SCOPE])
                            held = None
                        if held is None:
                            self.sql.execute(
                                "INSERT INTO locks (scope, lock_id, pid, host, actor, command, "
                                "acquired_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                [LOCK_SCOPE, *vars(mine).values()],
                            )
                            return mine
                except BaseException:
                    self.sql.advisory_unlock(LOCK_KEY)
                    raise
            else:
                held = self.current_lock()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                hint = "wait for it to finish, or raise --lock-timeout"
                if held is None:
                    raise StateConflict("the workspace is locked by another afctl", hint=hint)
                if held.holder_is_gone() and not shared:
                    hint = (
                        f"process {held.pid} is no longer running; if no apply is in progress, "
                        f"run: afctl force-unlock {held.lock_id}"
                    )
                raise StateConflict(f"the workspace is locked: {held.describe()}", hint=hint)
            time.sleep(min(0.1, remaining))

    def release_lock(self, lock: LockInfo) -> None:
        """Let go of `lock` if it is still ours (its row is gone after a successful apply)."""
        try:
            with self.transaction():
                self.sql.execute(
                    "DELETE FROM locks WHERE scope = ? AND lock_id = ?", [LOCK_SCOPE, lock.lock_id]
                )
        finally:
            self.sql.advisory_unlock(LOCK_KEY)

    def check_lock(self, lock: LockInfo) -> None:
        """Inside a write transaction: make sure nobody force-unlocked us meanwhile."""
        held = self.current_lock()
        if held is None or held.lock_id != lock.lock_id:
            raise StateConflict(
                "the workspace lock was taken away during the apply; nothing was written",
                hint="someone ran afctl force-unlock; plan and apply again",
            )

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Remove the lock `lock_id`, left behind by a process that died (on PostgreSQL, also
        end the database session that still holds it: its apply rolls back).

        Raises:
            StateConflict: there is no lock, or it has another id.
        """
        with self.transaction():
            held = self.current_lock()
            if held is None:
                raise StateConflict("the workspace is not locked")
            if held.lock_id != lock_id:
                raise StateConflict(
                    f"the workspace lock has another id: {held.describe()}",
                    hint=f"to remove this lock: afctl force-unlock {held.lock_id}",
                )
            self.sql.execute("DELETE FROM locks WHERE scope = ?", [LOCK_SCOPE])
        self.sql.end_holder(LOCK_KEY)
        return held

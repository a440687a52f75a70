"""`afctl db`: where the state and the prompt log are kept, which migrations they have, and
running the pending ones (a shared PostgreSQL database is migrated on purpose, not by the
first afctl that happens to open it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from afctl.dbops.copy import StoreCopy
from afctl.storage.schema import MigrationSet
from afctl.storage.settings import DatabaseUrl
from afctl.storage.sql import Sql
from afctl.workspace import Workspace

STORES = ("state", "log")
_INTERNAL = ("sqlite_", "_sqlite")
"""SQLite's own tables and the record of migrations (the target keeps its own)."""


@dataclass
class StoreStatus:
    store: str
    """state or log."""
    backend: str
    where: str
    """The file, or the URL with its password hidden."""
    applied: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    newer: list[str] = field(default_factory=list)
    """Migrations a newer afctl ran (this one cannot use the database)."""
    ran: list[str] = field(default_factory=list)
    """What `migrate` just ran."""

    @property
    def current(self) -> bool:
        return not self.pending and not self.newer

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "backend": self.backend, "where": self.where,
                "applied": self.applied, "pending": self.pending, "newer": self.newer,
                "ran": self.ran, "current": self.current}  # fmt: skip


def _migrations(store: str) -> MigrationSet:
    if store == "state":
        from afctl.state.migrations import state_migrations

        return state_migrations
    from afctl.promptlog.migrations import log_migrations

    return log_migrations


class DbService:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def _url(self, store: str) -> DatabaseUrl | None:
        settings = self.workspace.storage
        return settings.state if store == "state" else settings.log

    def _file(self, store: str) -> str:
        from afctl.promptlog.writer import LOG_FILE
        from afctl.state.store import STATE_FILE

        return str(self.workspace.dir / (STATE_FILE if store == "state" else LOG_FILE))

    @contextlib.contextmanager
    def _open(self, store: str, *, create: bool) -> Iterator[Sql | None]:
        """A connection to the store's database; None for a SQLite file not made yet (and not
        `create`)."""
        url = self._url(store)
        if url is not None:
            from afctl.storage.settings import LOG_SCHEMA, STATE_SCHEMA
            from afctl.storage.sql import connect_postgres

            sql: Sql = connect_postgres(url, STATE_SCHEMA if store == "state" else LOG_SCHEMA)
        else:
            import sqlite3
            from pathlib import Path

            from afctl.sqlite_files import connect
            from afctl.storage.sql import SqliteSql

            path = Path(self._file(store))
            if not path.exists() and not create:
                yield None
                return
            from afctl.workspace import ensure_workspace

            ensure_workspace(path.parent)
            connection: sqlite3.Connection = connect(path, timeout=10, isolation_level=None)
            sql = SqliteSql(connection, str(path))
        try:
            yield sql
        finally:
            sql.close()

    def _status(self, store: str, sql: Sql | None) -> StoreStatus:
        migrations = _migrations(store)
        url = self._url(store)
        where = url.shown if url is not None else self._file(store)
        status = StoreStatus(store, "postgresql" if url is not None else "sqlite", where)
        if sql is None:
            status.pending = migrations.names
            return status
        status.applied = migrations.applied(sql)
        status.pending = migrations.pending(sql)
        status.newer = migrations.newer(sql)
        return status

    def status(self) -> list[StoreStatus]:
        """Where each store is kept and which migrations it has and lacks.

        Raises:
            DatabaseUnavailable: a configured database cannot be reached.
        """
        statuses = []
        for store in STORES:
            with self._open(store, create=False) as sql:
                statuses.append(self._status(store, sql))
        return statuses

    def migrate(self) -> list[StoreStatus]:
        """Run every pending migration of both stores (each store's in one transaction).

        Raises:
            DatabaseUnavailable: a configured database cannot be reached.
            StateConflict: a newer afctl migrated a store.
        """
        statuses = []
        for store in STORES:
            with self._open(store, create=True) as sql:
                assert sql is not None
                ran = self._migrate(store, sql)
                status = self._status(store, sql)
                status.ran = ran
                statuses.append(status)
        return statuses

    def _migrate(self, store: str, sql: Sql) -> list[str]:
        if store == "state":
            from afctl.state.store import StateStore

            return StateStore(sql).migrate()
        from afctl.storage.schema import refuse_newer

        migrations = _migrations(store)
        refuse_newer(migrations, sql)
        return migrations.apply(sql)

    def copy(self, to: str) -> list[StoreCopy]:
        """Copy the workspace's SQLite files (state and prompt log) into the PostgreSQL
        database at `to`, migrating it first, and verify every table (see `dbops.copy`).

        Raises:
            UsageError: `to` is not a PostgreSQL URL, or a store is not in a SQLite file.
            DatabaseUnavailable: the target cannot be used.
            StateConflict: the target holds other content under the same keys.
        """
        from afctl.dbops.copy import copy_store
        from afctl.errors import UsageError
        from afctl.storage.settings import LOG_SCHEMA, STATE_SCHEMA
        from afctl.storage.sql import connect_postgres

        target_url = DatabaseUrl.parse(to, "--to")
        copies = []
        for store in STORES:
            url = self._url(store)
            if url is not None:
                raise UsageError(
                    f"the {store} is in {url.shown} already ({url.variable}); db copy moves a "
                    "workspace's SQLite files",
                    hint=f"unset {url.variable} to copy the files in .afctl/",
                )
            with self._open(store, create=False) as source:
                if source is None:
                    continue
                self._migrate(store, source)
                tables = sorted(t for t in source.tables() if not t.startswith(_INTERNAL))
                if "meta" in tables:  # first: whether the workspace id goes depends on applies
                    tables.insert(0, tables.pop(tables.index("meta")))
                schema = STATE_SCHEMA if store == "state" else LOG_SCHEMA
                target = connect_postgres(target_url, schema)
                try:
                    self._migrate(store, target)
                    copies.append(copy_store(store, source, target, tables))
                finally:
                    target.close()
        return copies

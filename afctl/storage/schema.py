"""One numbered, append-only migration history per store, applied to SQLite or PostgreSQL.

A migration is a function of a schema object with sqlite-utils' table API (the subset afctl's
migrations use: `db[table].create(columns, pk=, not_null=)`, `.create_index(columns,
unique=)`, `.add_column(name, type)`). On SQLite it is sqlite-utils itself (its
`_sqlite_migrations` table records what ran, as before); on PostgreSQL an adapter writes the
same tables as PostgreSQL DDL and `afctl_migrations` records what ran. Each migration runs in
the transaction that records it, under a lock, so two processes cannot both migrate.

On SQLite, a store migrates itself when opened (the embedded default needs no step); on
PostgreSQL, a shared database is migrated on purpose (`afctl db migrate`), and a store that
finds migrations pending says so.
"""

from __future__ import annotations

import datetime
import zlib
from collections.abc import Callable
from typing import Any

from afctl.storage.sql import Sql

Step = Callable[[Any], None]
PG_TABLE = "afctl_migrations"
_PG_TYPES = {str: "TEXT", int: "BIGINT", float: "DOUBLE PRECISION", bytes: "BYTEA"}


class MigrationSet:
    """The migrations of one store, in order (register with `@migrations("0001_name")`)."""

    def __init__(self, name: str) -> None:
        from sqlite_utils.migrations import Migrations

        self.name = name
        self.steps: list[tuple[str, Step]] = []
        self._sqlite = Migrations(name)

    def __call__(self, name: str) -> Callable[[Step], Step]:
        def register(step: Step) -> Step:
            self.steps.append((name, step))
            self._sqlite(name=name)(step)
            return step

        return register

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.steps]

    @property
    def lock_key(self) -> int:
        """The advisory lock taken while migrating (PostgreSQL)."""
        return zlib.crc32(f"afctl-migrate:{self.name}".encode())

    def applied(self, sql: Sql) -> list[str]:
        """The names of the migrations that ran, in order."""
        if sql.dialect == "sqlite":
            return [m.name for m in self._sqlite.applied(_sqlite_db(sql))]
        if PG_TABLE not in sql.tables():
            return []
        rows = sql.execute(f"SELECT name FROM {PG_TABLE} WHERE migration_set = ? ORDER BY name",
                           [self.name]).fetchall()  # fmt: skip
        return [str(r[0]) for r in rows]

    def pending(self, sql: Sql) -> list[str]:
        done = set(self.applied(sql))
        return [name for name in self.names if name not in done]

    def newer(self, sql: Sql) -> list[str]:
        """Migrations that ran which this afctl does not know (a newer afctl wrote them)."""
        known = set(self.names)
        return [name for name in self.applied(sql) if name not in known]

    def apply(self, sql: Sql, then: Callable[[Sql], None] | None = None) -> list[str]:
        """Run the pending migrations, each with its record, in one transaction (and `then`,
        when any ran, in the same one); returns their names. Nothing is opened when none is
        pending."""
        if not self.pending(sql):
            return []
        with sql.transaction():
            if sql.dialect == "sqlite":  # the write lock is taken: pending is final now
                pending = self.pending(sql)
                self._sqlite.apply(_sqlite_db(sql))
            else:
                pending = self._apply_postgres(sql)
            if pending and then is not None:
                then(sql)
        return pending

    def _apply_postgres(self, sql: Sql) -> list[str]:
        sql.execute("SELECT pg_advisory_xact_lock(?)", [self.lock_key])
        sql.execute(f"CREATE TABLE IF NOT EXISTS {PG_TABLE} (migration_set TEXT NOT NULL, "
                    "name TEXT NOT NULL, applied_at TEXT NOT NULL, "
                    "PRIMARY KEY (migration_set, name))")  # fmt: skip
        pending = self.pending(sql)
        schema = _PgSchema(sql)
        for name, step in self.steps:
            if name in pending:
                step(schema)
                sql.execute(f"INSERT INTO {PG_TABLE} (migration_set, name, applied_at) "
                            "VALUES (?, ?, ?)", [self.name, name, _now()])  # fmt: skip
        return pending


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _sqlite_db(sql: Sql) -> Any:
    import sqlite_utils

    return sqlite_utils.Database(sql.conn)  # type: ignore[attr-defined]


class _PgSchema:
    def __init__(self, sql: Sql) -> None:
        self.sql = sql

    def __getitem__(self, table: str) -> _PgTable:
        return _PgTable(self.sql, table)


class _PgTable:
    """The part of sqlite-utils' Table that migrations use, as PostgreSQL DDL."""

    def __init__(self, sql: Sql, name: str) -> None:
        self.sql = sql
        self.name = name

    def create(
        self,
        columns: dict[str, type],
        pk: str | tuple[str, ...] | None = None,
        not_null: set[str] | None = None,
    ) -> None:
        keys = (pk,) if isinstance(pk, str) else tuple(pk or ())
        required = set(not_null or ()) | set(keys)
        parts = [f"{column} {_PG_TYPES[kind]}" + (" NOT NULL" if column in required else "")
                 for column, kind in columns.items()]  # fmt: skip
        if keys:
            parts.append(f"PRIMARY KEY ({', '.join(keys)})")
        self.sql.execute(f"CREATE TABLE {self.name} ({', '.join(parts)})")

    def create_index(self, columns: list[str], unique: bool = False) -> None:
        index = f"idx_{self.name}_{'_'.join(columns)}"
        kind = "UNIQUE INDEX" if unique else "INDEX"
        self.sql.execute(f"CREATE {kind} {index} ON {self.name} ({', '.join(columns)})")

    def add_column(self, name: str, kind: type) -> None:
        self.sql.execute(f"ALTER TABLE {self.name} ADD COLUMN {name} {_PG_TYPES[kind]}")


def refuse_newer(migrations: MigrationSet, sql: Sql) -> None:
    """Raises StateConflict when a newer afctl migrated the database."""
    from afctl.errors import StateConflict

    newer = migrations.newer(sql)
    if newer:
        raise StateConflict(
            f"{sql.where} was written by a newer afctl (migration {newer[-1]})",
            hint="upgrade afctl to read this workspace",
        )


def check_migrated(migrations: MigrationSet, sql: Sql, variable: str, what: str) -> None:
    """Raises DatabaseUnavailable when migrations are pending on a shared database, and
    StateConflict when a newer afctl migrated it."""
    from afctl.errors import DatabaseUnavailable

    refuse_newer(migrations, sql)
    pending = migrations.pending(sql)
    if pending:
        raise DatabaseUnavailable(
            f"the database {sql.where} ({variable}) lacks afctl's {what} migrations "
            f"{', '.join(pending)}",
            hint="run: afctl db migrate",
        )

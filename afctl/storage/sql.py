"""One small interface over a connection to SQLite or PostgreSQL, so a store's SQL runs on
either.

Stores write SQL both databases understand: `?` parameters (turned into psycopg's `%s` here),
`INSERT ... ON CONFLICT (...) DO UPDATE/DO NOTHING`, `||`, standard aggregates; nothing that
only one of them has. A write transaction takes SQLite's write lock up front (`BEGIN
IMMEDIATE`); on PostgreSQL it is a plain transaction, and what must not interleave takes an
advisory lock (`advisory_lock`).

PostgreSQL connections come from one psycopg pool per URL in a process; a store holds one
connection while it is open. The first connection is made directly, so a wrong password or an
unreachable host is one clear error naming the URL (password hidden), not a pool timeout.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from afctl.errors import DatabaseUnavailable
from afctl.storage.settings import DatabaseUrl

Params = Sequence[Any]
CONNECT_TIMEOUT_S = 5


class Sql:
    """A connection to one database (see the module's doc)."""

    dialect: ClassVar[str]
    where: str
    """The file or URL (password hidden), for messages."""

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        """The driver's errors."""
        raise NotImplementedError

    @property
    def retryable(self) -> tuple[type[Exception], ...]:
        """The driver's errors worth another try (locked, busy, connection lost)."""
        raise NotImplementedError

    def execute(self, sql: str, params: Params = ()) -> Any:
        """Run one statement; the result has `fetchone()`, `fetchall()` (tuples), `rowcount`."""
        raise NotImplementedError

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        raise NotImplementedError

    def query(self, sql: str, params: Params = ()) -> list[dict[str, Any]]:
        """The rows of a SELECT, as dicts by column name."""
        cursor = self.execute(sql, params)
        names = [d[0] for d in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def insert(self, table: str, rows: Sequence[dict[str, Any]], *, ignore: bool = False) -> None:
        """Insert rows (all with the same columns); `ignore`: skip those whose key exists."""
        if not rows:
            return
        columns = list(rows[0])
        marks = ", ".join("?" * len(columns))
        conflict = " ON CONFLICT DO NOTHING" if ignore else ""
        statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}){conflict}"
        self.executemany(statement, [[row[c] for c in columns] for row in rows])

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """A write transaction: committed when the block ends, rolled back if it raises."""
        raise NotImplementedError

    def tables(self) -> set[str]:
        raise NotImplementedError

    def json_text(self, column: str, key: str) -> str:
        """An expression: the text at top-level `key` of the JSON object in `column`."""
        raise NotImplementedError

    def advisory_lock(self, key: int) -> bool:
        """Try to take the database-wide lock `key` for this connection (PostgreSQL); SQLite
        has its file lock instead, so this is always True there."""
        return True

    def advisory_unlock(self, key: int) -> None:
        return None

    def end_holder(self, key: int) -> bool:
        """End the session holding advisory lock `key` (PostgreSQL); False on SQLite."""
        return False

    def close(self) -> None:
        raise NotImplementedError


class SqliteSql(Sql):
    dialect = "sqlite"
    errors = (sqlite3.Error,)
    retryable = (sqlite3.OperationalError,)

    def __init__(self, connection: sqlite3.Connection, where: str) -> None:
        self.conn = connection
        self.where = where

    def execute(self, sql: str, params: Params = ()) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        self.conn.executemany(sql, rows)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction that holds SQLite's write lock from its first statement."""
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def tables(self) -> set[str]:
        rows = self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {str(r[0]) for r in rows}

    def json_text(self, column: str, key: str) -> str:
        return f"json_extract({column}, '$.\"{key}\"')"

    def close(self) -> None:
        self.conn.close()


@functools.lru_cache(maxsize=512)
def _psycopg_text(sql: str) -> str:
    """`?` parameters as psycopg's `%s` (a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _storable(params: Params) -> list[Any]:
    """PostgreSQL's text cannot hold NUL: one in a model's text is kept as U+FFFD."""
    return [p.replace("\x00", "\ufffd") if isinstance(p, str) and "\x00" in p else p
            for p in params]  # fmt: skip


class PostgresSql(Sql):
    dialect = "postgresql"

    def __init__(self, connection: Any, where: str, give_back: Any = None) -> None:
        self.conn = connection
        self.where = where
        self._give_back = give_back

    @property
    def errors(self) -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.Error,)

    @property
    def retryable(self) -> tuple[type[Exception], ...]:
        import psycopg

        return (psycopg.OperationalError,)

    def execute(self, sql: str, params: Params = ()) -> Any:
        return self.conn.execute(_psycopg_text(sql), _storable(params))

    def executemany(self, sql: str, rows: Sequence[Params]) -> None:
        if not rows:
            return
        with self.conn.cursor() as cursor:
            cursor.executemany(_psycopg_text(sql), [_storable(r) for r in rows])

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        with self.conn.transaction():
            yield

    def tables(self) -> set[str]:
        rows = self.conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
        )
        return {str(r[0]) for r in rows}

    def json_text(self, column: str, key: str) -> str:
        return f"(CAST({column} AS jsonb) ->> '{key}')"

    def advisory_lock(self, key: int) -> bool:
        row = self.conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()
        return bool(row[0])

    def advisory_unlock(self, key: int) -> None:
        self.conn.execute("SELECT pg_advisory_unlock(%s)", [key])

    def end_holder(self, key: int) -> bool:
        """End the session that holds the advisory lock `key` (its transaction rolls back);
        False when no session holds it."""
        row = self.conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
            "AND granted AND pid <> pg_backend_pid() AND "
            "((classid::bigint << 32) | objid::bigint) = %s",
            [key],
        ).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        if self._give_back is not None:
            give_back, self._give_back = self._give_back, None
            give_back(self.conn)
        else:
            self.conn.close()


_pools: dict[str, Any] = {}
_pools_lock = threading.Lock()


def _reset(connection: Any) -> None:
    """A connection back in the pool holds no lock of the store that used it."""
    connection.execute("SELECT pg_advisory_unlock_all()")


def unavailable(url: DatabaseUrl, exc: BaseException) -> DatabaseUnavailable:
    """A driver's complaint as one line naming the database (its password hidden)."""
    from afctl.storage.settings import one_line

    return DatabaseUnavailable(
        f"cannot use the database {url.shown} ({url.variable}): {one_line(exc, url.url)}",
        hint="check that PostgreSQL runs there and the URL's user, password and database",
    )


def connect_postgres(url: DatabaseUrl, schema: str) -> PostgresSql:
    """A connection from the process's pool for `url` (made on first use), working in
    `schema` (a store's tables live in a schema of their own: state and the prompt log can
    share one database).

    Raises:
        DatabaseUnavailable: the server cannot be reached or refuses the login.
    """
    import psycopg
    from psycopg_pool import ConnectionPool, PoolTimeout

    with _pools_lock:
        pool = _pools.get(url.url)
        if pool is None:
            try:  # once directly: a wrong password or host says so, where a pool would time out
                psycopg.connect(url.url, connect_timeout=CONNECT_TIMEOUT_S).close()
            except psycopg.Error as exc:
                raise unavailable(url, exc) from None
            pool = ConnectionPool(url.url, min_size=1, max_size=20, open=False, name="afctl",
                                  kwargs={"autocommit": True,
                                          "connect_timeout": CONNECT_TIMEOUT_S},
                                  reset=_reset)  # fmt: skip
            pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
            _pools[url.url] = pool
    try:
        connection = pool.getconn(timeout=30)
    except (PoolTimeout, psycopg.Error) as exc:
        raise unavailable(url, exc) from None
    try:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        connection.execute(f"SET search_path TO {schema}")
    except psycopg.Error as exc:
        pool.putconn(connection)
        raise unavailable(url, exc) from None
    return PostgresSql(connection, url.shown, pool.putconn)


def close_pool(url: str | None = None) -> None:
    """Close the pool of `url` (every pool when None): its connections end."""
    with _pools_lock:
        for key in [url] if url is not None else list(_pools):
            pool = _pools.pop(key, None)
            if pool is not None:
                with contextlib.suppress(Exception):
                    pool.close(timeout=1)


atexit.register(close_pool)

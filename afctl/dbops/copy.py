"""`afctl db copy --to URL`: move a workspace's SQLite files into a PostgreSQL database.

For each store (state, prompt log): the target is migrated to the same history, every table
is copied in primary-key order in one transaction per store (rows already there, by key, are
left as they are: a second copy adds nothing), then verified: for every table, the rows of
the source and the target rows with the same keys hash the same (SHA-256 over each row's
values in key order), and the target holds at least as many rows. A mismatch is a conflict
(exit 4), never silently accepted: the target held other content under the same keys.

The state's workspace id goes with it while the target has no applies of its own, so plans
saved on the laptop still apply to the team's database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from afctl.errors import StateConflict
from afctl.storage.sql import Sql

BATCH = 1000


@dataclass
class TableCopy:
    table: str
    source_rows: int
    copied: int
    """Rows the target did not have."""
    digest: str
    """SHA-256 over the source's rows, in key order (the target's rows for those keys hash
    the same)."""

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "source_rows": self.source_rows, "copied": self.copied,
                "sha256": self.digest}  # fmt: skip


@dataclass
class StoreCopy:
    store: str
    source: str
    target: str
    tables: list[TableCopy] = field(default_factory=list)

    @property
    def copied(self) -> int:
        return sum(t.copied for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "source": self.source, "target": self.target,
                "copied": self.copied, "tables": [t.to_dict() for t in self.tables]}  # fmt: skip


def _columns_and_key(source: Sql, table: str) -> tuple[list[str], list[str]]:
    info = source.execute(f'PRAGMA table_info("{table}")').fetchall()
    columns = [str(row[1]) for row in info]
    key = [str(row[1]) for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]
    return columns, key or columns


def _normal(value: Any) -> Any:
    """A value as PostgreSQL keeps it (its text cannot hold NUL)."""
    return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def _rows(sql: Sql, table: str, columns: Sequence[str], key: Sequence[str]) -> Iterator[list[Any]]:
    cursor = sql.execute(f"SELECT {', '.join(columns)} FROM {table} ORDER BY {', '.join(key)}")
    while True:
        batch = cursor.fetchmany(BATCH)
        if not batch:
            return
        for row in batch:
            yield [_normal(v) for v in row]


def _target_rows(target: Sql, table: str, columns: Sequence[str], key: Sequence[str],
                 keys: list[tuple[Any, ...]]) -> dict[tuple[Any, ...], list[Any]]:  # fmt: skip
    """The target's rows with these keys."""
    found: dict[tuple[Any, ...], list[Any]] = {}
    width = len(key)
    for start in range(0, len(keys), BATCH):
        chunk = keys[start : start + BATCH]
        tuple_marks = ", ".join("(" + ", ".join("?" * width) + ")" for _ in chunk)
        rows = target.execute(
            f"SELECT {', '.join(columns)} FROM {table} WHERE ({', '.join(key)}) IN ({tuple_marks})",
            [v for k in chunk for v in k],
        ).fetchall()
        positions = [columns.index(c) for c in key]
        for row in rows:
            found[tuple(row[p] for p in positions)] = list(row)
    return found


def _digest(rows: Iterator[list[Any]]) -> str:
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def copy_store(store: str, source: Sql, target: Sql, tables: Sequence[str]) -> StoreCopy:
    """Copy `tables` from `source` (SQLite) into `target` (migrated), then verify them.

    Raises:
        StateConflict: the target holds other content under keys the source has.
    """
    result = StoreCopy(store, source.where, target.where)
    with target.transaction():
        for table in tables:
            columns, key = _columns_and_key(source, table)
            before = int(target.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            statement = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                         f"({', '.join('?' * len(columns))}) ON CONFLICT DO NOTHING")  # fmt: skip
            if table == "meta" and not _has_applies(target):
                updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in key)
                statement = statement.replace(
                    "DO NOTHING", f"({', '.join(key)}) DO UPDATE SET {updates}"
                )
            count = 0
            batch: list[list[Any]] = []
            for row in _rows(source, table, columns, key):
                count += 1
                batch.append(row)
                if len(batch) == BATCH:
                    target.executemany(statement, batch)
                    batch = []
            target.executemany(statement, batch)
            after = int(target.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            digest = _digest(_rows(source, table, columns, key))
            result.tables.append(TableCopy(table, count, after - before, digest))
    for copied in result.tables:
        _verify(source, target, copied)
    return result


def _has_applies(target: Sql) -> bool:
    return bool(target.execute("SELECT count(*) FROM applies").fetchone()[0] > 0)


def _verify(source: Sql, target: Sql, copied: TableCopy) -> None:
    table = copied.table
    columns, key = _columns_and_key(source, table)
    positions = [columns.index(c) for c in key]
    keys = [tuple(row[p] for p in positions) for row in _rows(source, table, columns, key)]
    found = _target_rows(target, table, columns, key, keys)
    missing = [k for k in keys if k not in found]
    if missing:
        raise StateConflict(f"{table}: {len(missing)} rows did not reach {target.where}")
    digest = _digest(iter(_normal_row(found[k]) for k in keys))
    if digest != copied.digest:
        differ = next(k for k, row in zip(keys, _rows(source, table, columns, key), strict=True)
                      if _normal_row(found[k]) != row)  # fmt: skip
        raise StateConflict(
            f"{table}: {target.where} holds other content under the key {differ}",
            hint="the target already has a different workspace's rows there; copy into an "
            "empty database",
        )


def _normal_row(row: list[Any]) -> list[Any]:
    return [_normal(v) for v in row]

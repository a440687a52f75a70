"""Keeping the prompt log's size in check: pruning old runs, vacuuming, and measuring."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from afctl.promptlog.writer import LogWriter


class Maintenance:
    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer

    def prune(self, before: str, *, keep_failed: bool = False) -> int:
        """Delete runs started before `before` (ISO text), with their events and payloads,
        and cached responses stored before it; returns how many runs. Runs still going are
        kept."""
        condition = "started_at < ? AND status NOT IN ('running', 'awaiting_approval')"
        if keep_failed:
            condition += " AND status NOT IN ('failed', 'blocked', 'interrupted')"

        def delete(conn: sqlite3.Connection) -> int:
            conn.execute(f"CREATE TEMP TABLE doomed AS SELECT id FROM runs WHERE {condition}",
                         [before])  # fmt: skip
            count = int(conn.execute("SELECT count(*) FROM doomed").fetchone()[0])
            for table, column in (("event_payloads", "run_id"), ("events", "run_id"),
                                  ("run_payloads", "run_id"), ("session_messages", "run_id"),
                                  ("runs", "id")):  # fmt: skip
                conn.execute(f"DELETE FROM {table} WHERE {column} IN (SELECT id FROM doomed)")
            conn.execute("DROP TABLE doomed")
            conn.execute("DELETE FROM response_cache WHERE created_at < ?", [before])
            conn.execute(
                "DELETE FROM revisions WHERE hash NOT IN "
                "(SELECT DISTINCT revision_hash FROM runs WHERE revision_hash IS NOT NULL)"
            )
            return count

        return int(self.writer.transaction(delete))

    def vacuum(self) -> None:
        """Give the space of deleted rows back to the file system."""
        self.writer.flush()
        conn = self.writer.conn
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("VACUUM")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def table_sizes(self) -> dict[str, tuple[int, int]]:
        """Bytes and rows per table (indexes counted with their table)."""
        self.writer.flush()
        conn = self.writer.conn
        sizes: dict[str, int] = {}
        for _name, table, size in conn.execute(
            "SELECT d.name, coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d "
            "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY d.name"
        ):
            sizes[table] = sizes.get(table, 0) + int(size)
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE '_sqlite%' ORDER BY name")]  # fmt: skip
        return {
            table: (sizes.get(table, 0),
                    conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
            for table in tables
        }  # fmt: skip

    def file_size(self) -> int:
        """Bytes on disk: the database and its WAL."""
        path = self.writer.path
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())

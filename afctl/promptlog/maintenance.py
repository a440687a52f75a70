"""Keeping the prompt log's size in check: pruning old runs, vacuuming, and measuring."""

from __future__ import annotations

from pathlib import Path

from afctl.promptlog.writer import LogWriter
from afctl.storage.sql import Sql


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

        def delete(conn: Sql) -> int:
            doomed = f"SELECT id FROM runs WHERE {condition}"
            count = int(conn.execute(f"SELECT count(*) FROM ({doomed}) d", [before])
                        .fetchone()[0])  # fmt: skip
            for table, column in (("event_payloads", "run_id"), ("events", "run_id"),
                                  ("run_payloads", "run_id"), ("session_messages", "run_id"),
                                  ("runs", "id")):  # fmt: skip
                conn.execute(f"DELETE FROM {table} WHERE {column} IN ({doomed})", [before])
            conn.execute("DELETE FROM response_cache WHERE created_at < ?", [before])
            conn.execute(
                "DELETE FROM revisions WHERE hash NOT IN "
                "(SELECT DISTINCT revision_hash FROM runs WHERE revision_hash IS NOT NULL)"
            )
            return count

        return int(self.writer.transaction(delete))

    def vacuum(self) -> None:
        """Give the space of deleted rows back (SQLite: to the file system; PostgreSQL: to
        the tables, for new rows)."""
        self.writer.flush()
        sql = self.writer.sql
        if sql.dialect != "sqlite":
            sql.execute("VACUUM")
            return
        sql.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        sql.execute("VACUUM")
        sql.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def table_sizes(self) -> dict[str, tuple[int, int]]:
        """Bytes and rows per table (indexes counted with their table)."""
        self.writer.flush()
        sql = self.writer.sql
        hidden = ("sqlite_", "_sqlite", "afctl_migrations")
        tables = sorted(t for t in sql.tables() if not t.startswith(hidden))
        sizes: dict[str, int] = {}
        if sql.dialect == "sqlite":
            for _name, table, size in sql.execute(
                "SELECT d.name, coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d "
                "LEFT JOIN sqlite_master m ON m.name = d.name GROUP BY d.name"
            ):
                sizes[table] = sizes.get(table, 0) + int(size)
        else:
            for table in tables:
                row = sql.execute("SELECT pg_total_relation_size(CAST(? AS regclass))", [table])
                sizes[table] = int(row.fetchone()[0])
        return {
            table: (sizes.get(table, 0),
                    int(sql.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]))
            for table in tables
        }  # fmt: skip

    def file_size(self) -> int:
        """Bytes on disk: the database and its WAL (PostgreSQL: the database's size)."""
        path = self.writer.path
        if path is None:
            return int(self.writer.sql.execute("SELECT pg_database_size(current_database())")
                       .fetchone()[0])  # fmt: skip
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())

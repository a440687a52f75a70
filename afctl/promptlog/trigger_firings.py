"""Trigger firings in the prompt log: each scheduled occurrence or webhook delivery claimed
once, by one process, so two `afctl serve` on one workspace never fire it twice."""

from __future__ import annotations

import sqlite3

from afctl.ids import utc_now
from afctl.promptlog.writer import LogWriter


class TriggerFirings:
    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer

    def claim(self, trigger: str, occurrence: str) -> bool:
        """Claim an occurrence for this process; False when another (or an earlier) process
        already fired it."""

        def insert(connection: sqlite3.Connection) -> bool:
            cursor = connection.execute(
                "INSERT OR IGNORE INTO trigger_firings (key, trigger, occurrence, fired_at) "
                "VALUES (?, ?, ?, ?)",
                [f"{trigger}@{occurrence}", trigger, occurrence, utc_now()],
            )
            return cursor.rowcount == 1

        return bool(self.writer.transaction(insert))

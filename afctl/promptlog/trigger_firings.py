"""Trigger firings in the prompt log: each scheduled occurrence or webhook delivery claimed
once, by one process, so two `afctl serve` on one workspace never fire it twice."""

from __future__ import annotations

from afctl.ids import utc_now
from afctl.promptlog.writer import LogWriter
from afctl.storage.sql import Sql


class TriggerFirings:
    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer

    def claim(self, trigger: str, occurrence: str) -> bool:
        """Claim an occurrence for this process; False when another (or an earlier) process
        already fired it."""

        def insert(connection: Sql) -> bool:
            cursor = connection.execute(
                "INSERT INTO trigger_firings (key, trigger, occurrence, fired_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [f"{trigger}@{occurrence}", trigger, occurrence, utc_now()],
            )
            return bool(cursor.rowcount == 1)

        return bool(self.writer.transaction(insert))

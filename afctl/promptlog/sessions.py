"""Sessions in the prompt log: the messages of a conversation that goes on over several runs
(`afctl run --session NAME`)."""

from __future__ import annotations

import json
from typing import Any

from afctl.ids import utc_now
from afctl.promptlog.writer import LogWriter, Redact
from afctl.storage.sql import Sql


class Sessions:
    def __init__(self, writer: LogWriter) -> None:
        self.writer = writer

    def messages(self, session_id: str, limit: int) -> list[dict[str, Any]]:
        """The last `limit` messages of a session, oldest first."""
        self.writer.flush()
        rows = self.writer.sql.execute(
            "SELECT message FROM (SELECT seq, message FROM session_messages WHERE session_id = ? "
            "ORDER BY seq DESC LIMIT ?) latest ORDER BY seq",
            [session_id, limit],
        ).fetchall()
        return [json.loads(message) for (message,) in rows]

    def append(
        self,
        session_id: str,
        agent: str,
        run_id: str,
        messages: list[dict[str, Any]],
        redact: Redact,
    ) -> None:
        """The messages run `run_id` added (redacted); on disk before this returns."""
        now = utc_now()
        texts = [redact(json.dumps(message)) for message in messages]

        def write(connection: Sql) -> None:
            connection.execute(
                "INSERT INTO sessions (id, agent, created_at, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                [session_id, agent, now, now],
            )
            row = connection.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM session_messages WHERE session_id = ?",
                [session_id],
            ).fetchone()
            start = int(row[0]) + 1
            connection.executemany(
                "INSERT INTO session_messages (session_id, seq, run_id, message) "
                "VALUES (?, ?, ?, ?)",
                [(session_id, start + i, run_id, text) for i, text in enumerate(texts)],
            )

        self.writer.submit(write, now=True)

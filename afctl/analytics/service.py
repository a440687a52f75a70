"""Analytics over the prompt log for a context: stats, read-only SQL and exports (DuckDB)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.analytics.logs import LogAnalytics, Table


class AnalyticsService:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def analytics(self) -> LogAnalytics:
        """DuckDB over the prompt log (read-only), with the documented views."""
        from afctl.analytics.logs import LogAnalytics
        from afctl.promptlog.store import LOG_FILE

        return LogAnalytics(self.workspace.dir / LOG_FILE, self.workspace.storage.log)

    def stats(
        self, by: Sequence[str] = (), *, since: str | None = None, include_replays: bool = False
    ) -> Table:
        """Runs, success rate, latency percentiles, tokens and cost, grouped by `by` (agent,
        model, day, status, env, target, label:KEY)."""
        with self.analytics() as analytics:
            return analytics.stats(list(by), since, include_replays)

    def query(self, sql: str) -> Table:
        """Read-only SQL over the prompt log's views (runs, events, model_calls, tool_calls,
        evals)."""
        with self.analytics() as analytics:
            return analytics.query(sql)

    def export(
        self,
        what: str,
        target: str | os.PathLike[str],
        fmt: str,
        *,
        since: str | None = None,
        content: bool = False,
    ) -> int:
        """Write a view of the prompt log to parquet, csv or jsonl (`content`: with inputs,
        outputs and payloads, redacted as logged); returns the rows written."""
        with self.analytics() as analytics:
            return analytics.export(what, Path(target), fmt, since, content)

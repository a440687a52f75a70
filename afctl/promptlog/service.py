"""The prompt log of a context: one shared writer for its life, runs read back, upkeep.

`LogService.log` is the workspace's `logs.db`, opened on first use and kept open (with its
writer and checkpointer) until the context closes; every service records through it.
`restore` reads a recorded run back whole, for every caller that goes on with a run or
replays it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.manifests.catalog import Catalog
    from afctl.promptlog.store import EventRecord, PromptLog, RunRecord
    from afctl.storage.sql import Sql


@dataclass(frozen=True)
class Transcript:
    """`afctl runs show`: a run, its payloads (input, output, vars) and its events in order."""

    run: RunRecord
    payload: dict[str, Any]
    events: list[EventRecord]

    def to_dict(self) -> dict[str, Any]:
        """The run, its payloads and its events as one JSON object (`runs show -o json`)."""
        return {**self.run.to_dict(), **self.payload, "events": [{**vars(e)} for e in self.events]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transcript:
        """A transcript as `to_dict` gave it (a remote client reads the server's answer)."""
        from afctl.promptlog.store import EventRecord, RunRecord

        fields = RunRecord.__dataclass_fields__
        record = RunRecord(**{k: v for k, v in data.items() if k in fields})
        payload = {k: v for k, v in data.items() if k not in fields and k != "events"}
        if "input" in data:
            payload["input"] = data["input"]
        return cls(record, payload, [EventRecord(**e) for e in data.get("events") or []])


@dataclass(frozen=True)
class RestoredRun:
    """A recorded run read back: its record, payloads, events, and the resources it ran on."""

    run: RunRecord
    payload: dict[str, Any]
    events: list[EventRecord]
    log: PromptLog

    def catalog(self) -> Catalog:
        """The revision of the resources the run used, as recorded when it started."""
        from afctl.manifests.catalog import Catalog

        return Catalog.of_bundle(self.log.revision(self.run.revision_hash or ""))

    @property
    def variables(self) -> dict[str, Any]:
        """The run's `--var` values (a workflow keeps them beside its inputs)."""
        saved = self.payload.get("vars") or {}
        if self.run.kind == "workflow":
            return dict(saved.get("vars") or {})
        return dict(saved)

    @property
    def inputs(self) -> dict[str, Any]:
        """A workflow run's inputs."""
        return dict((self.payload.get("vars") or {}).get("inputs") or {})


USAGE_GROUPS = ("blueprint", "agent", "model")
"""What `usage` groups by."""


def _usage_column(group: str, sql: Sql) -> str:
    """The expression `usage` reads a group from."""
    return sql.json_text("labels", "afctl/blueprint") if group == "blueprint" else group


@dataclass(frozen=True)
class UsageTotals:
    runs: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    cost_unknown_runs: int


class LogService:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self._log: PromptLog | None = None

    @property
    def log(self) -> PromptLog:
        """The shared prompt log (created with the workspace if there is none yet)."""
        if self._log is None:
            self._log = self.open()
        return self._log

    def open(self) -> PromptLog:
        """A prompt log of its own for the caller, who closes it."""
        from afctl.promptlog.store import PromptLog

        return PromptLog.open(self.workspace.dir, self.workspace.storage)

    def flush(self) -> None:
        """Commit what the shared log holds (a call that recorded anything ends with this)."""
        if self._log is not None:
            self._log.flush()

    def close(self) -> None:
        if self._log is not None:
            log, self._log = self._log, None
            log.close()

    def restore(self, run_id: str) -> RestoredRun:
        """A run by id or unique id prefix, read back whole.

        Raises:
            UsageError: no run, or several, match.
        """
        log = self.log
        record = log.run(run_id)
        return RestoredRun(record, log.payload(record.id), list(log.events(record.id)), log)

    def runs(
        self, *, agent: str | None = None, status: str | None = None, limit: int = 20
    ) -> list[RunRecord]:
        """Recent runs from the prompt log, newest first."""
        return self.log.runs(agent=agent, status=status, limit=limit)

    def transcript(self, run_id: str) -> Transcript:
        """A run (by id or unique id prefix) with its input, output and every event.

        Raises:
            UsageError: no run, or several, match.
        """
        restored = self.restore(run_id)
        return Transcript(restored.run, restored.payload, restored.events)

    def sizes(self) -> tuple[int, dict[str, tuple[int, int]]]:
        """The prompt log's size on disk, and bytes and rows per table."""
        return self.log.maintenance.file_size(), self.log.maintenance.table_sizes()

    def prune(self, older_than: str, *, keep_failed: bool = False) -> tuple[int, str, int]:
        """Delete runs started more than `older_than` (30d, 12h, ...) ago, with their events
        and payloads: (runs deleted, the cut-off timestamp, the file's size).

        Raises:
            UsageError: `older_than` is neither a duration nor a date.
        """
        from afctl.durations import since_timestamp

        before = since_timestamp(older_than)
        return (
            self.log.maintenance.prune(before, keep_failed=keep_failed),
            before,
            self.log.maintenance.file_size(),
        )

    def vacuum(self) -> tuple[int, int]:
        """Compact the prompt log: its size (bytes) before and after."""
        before = self.log.maintenance.file_size()
        self.log.maintenance.vacuum()
        return before, self.log.maintenance.file_size()

    def usage(
        self, by: Sequence[str], since: str | None
    ) -> list[tuple[dict[str, Any], UsageTotals]]:
        """Agent runs of installed blueprints (not replays), since the timestamp `since`,
        grouped by `by` (names in USAGE_GROUPS): each group with its totals."""
        log = self.log
        where = ["kind = 'agent'", f"{_usage_column('blueprint', log.sql)} IS NOT NULL",
                 "is_replay = 0"]  # fmt: skip
        values: list[Any] = []
        if since:
            where.append("started_at >= ?")
            values.append(since)
        select = ", ".join(f"{_usage_column(b, log.sql)} AS {b}" for b in by)
        sql = (
            f"SELECT {select}, count(*), CAST(coalesce(sum(input_tokens), 0) AS BIGINT), "
            "CAST(coalesce(sum(output_tokens), 0) AS BIGINT), sum(cost_usd), "
            "CAST(sum(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END) AS BIGINT) "
            f"FROM runs WHERE {' AND '.join(where)} "
            f"GROUP BY {', '.join(by)} ORDER BY {', '.join(by)}"
        )
        log.flush()
        rows = []
        for row in log.sql.execute(sql, values):
            group = dict(zip(by, row[: len(by)], strict=True))
            runs, tokens_in, tokens_out, cost, unknown = row[len(by) :]
            rows.append((group, UsageTotals(runs, tokens_in, tokens_out, cost, unknown)))
        return rows

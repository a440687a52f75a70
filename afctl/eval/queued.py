"""Eval cases on workers (`afctl eval --executor celery`): each case × variant × repeat is a
job; what the runner scores is read back from the prompt log once the worker is done, in the
shape an in-process case has (a RunResult and a trail), so the assertions, the report and the
exit code are the same.

The suite's resources are stored in the log as one revision before any job is queued (the
workers run that revision, whether the suite came from files or the applied state). A case's
time limit is the worker's to enforce (time waiting in the queue does not count).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from afctl.eval.suite import Case, Suite, Variant
from afctl.promptlog.store import PromptLog, RunRecord
from afctl.providers.types import Usage
from afctl.runtime.resumption import recorded_result
from afctl.runtime.run_types import RunResult, Step
from afctl.workers.dispatch import Dispatcher
from afctl.workers.jobs import Job
from afctl.workers.queueing import stored_revision

_TRAIL = ("tool_call", "handoff", "guardrail")


@dataclass
class QueuedCase:
    """One case run by a worker, driven like an in-process AgentRun (`run`, `trail`)."""

    enforces_timeout = True
    """The worker stops the run at the suite's time limit (queueing time does not count)."""
    dispatcher: Dispatcher
    job: Job
    log: PromptLog
    trail: list[Step] = field(default_factory=list)

    @property
    def run_id(self) -> str:
        return self.job.run_id

    async def run(self, given: Any) -> RunResult:
        from dataclasses import replace

        await self.dispatcher.enqueue(replace(self.job, given=given))
        return self._read(await self.dispatcher.finished(self.run_id))

    def _read(self, record: RunRecord) -> RunResult:
        log = self.log
        if record.kind == "workflow":
            payload = log.payload(self.run_id)
            self.trail = [Step("tool_call", {"name": e.payload.get("name"),
                                             "arguments": e.payload.get("arguments") or {}})
                          for e in _step_calls(log, self.run_id)]  # fmt: skip
            details = payload.get("details") or {}
            ok = record.status == "succeeded"
            return RunResult(
                record.id, record.status, payload.get("output"), record.error,
                record.error_type if record.error_type == "timeout" else
                (None if ok else "workflow"),
                Usage(int(details.get("total_tokens") or 0), 0), details.get("total_cost_usd"),
                record.latency_ms or 0.0, 0, record.tool_calls or 0,
            )  # fmt: skip
        self.trail = [Step(e.type, e.payload) for e in log.events(self.run_id) if e.type in _TRAIL]
        return recorded_result(log, record)


def _step_calls(log: PromptLog, run_id: str) -> list[Any]:
    """The tool calls of a workflow run's tool steps that succeeded, in the order they ended."""
    children = log.sql.execute(
        "SELECT id FROM runs WHERE parent_id = ? AND kind = 'tool' AND status = 'succeeded' "
        "ORDER BY ended_at, id",
        [run_id],
    ).fetchall()
    return [e for (child,) in children for e in log.events(child) if e.type == "tool_call"]


def case_job(
    suite: Suite, case: Case, variant: Variant, repeat: int, *, eval_id: str, revision: str,
    env: str, run_id: str, cache: bool,
) -> Job:  # fmt: skip
    """The job of one case in one variant."""
    return Job(run_id, "workflow" if suite.kind == "Workflow" else "agent", suite.agent,
               revision, None, case.vars_for(variant), env, variant.model,
               dict(variant.params), eval_id=eval_id, repeat=repeat, cache=cache,
               timeout_s=suite.timeout_s)  # fmt: skip


def suite_revision(log: PromptLog, suite: Suite, environment: Any) -> str:
    """Store the resources the suite's target runs on; their content hash."""
    return stored_revision(log, suite.kind, suite.agent, environment)

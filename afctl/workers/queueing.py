"""Runs queued for workers by whoever would otherwise run them in-process: the server's
background runs, its triggers' workflow runs, a workflow's `for_each` items.

`RunQueue.job` stores the resources the run needs as a revision in the prompt log (workers
read manifests from there) and names the run; `RunQueue.carry` queues the job, passes on the
run's events as the worker logs them, and returns once the run is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from afctl.workers.dispatch import Dispatcher
from afctl.workers.jobs import Job
from afctl.workers.settings import BrokerSettings

if TYPE_CHECKING:
    from afctl.promptlog.store import EventRecord, PromptLog

TAIL_S = 0.2
"""How often the events of a run being followed are read from the log."""


def stored_revision(log: PromptLog, kind: str, name: str, environment: Any) -> str:
    """Store the resources agent or workflow `name` runs on (from `environment`'s catalog) in
    the prompt log; their content hash, which a job names."""
    from afctl.hashing import content_hash

    if kind.lower() == "workflow":
        from afctl.runtime.workflow import workflow_bundle

        bundle, target = workflow_bundle(name, environment), f"workflow/{name}"
    else:
        from afctl.runtime.activation import resource_bundle

        bundle, target = resource_bundle(name, environment), f"agent/{name}"
    digest = content_hash(bundle)
    log.store_revision(digest, target, bundle, environment.secrets.redact)
    log.flush()
    return digest


class RunQueue:
    """Queueing runs for `afctl worker`s, and following them in the log."""

    def __init__(self, settings: BrokerSettings, log: PromptLog) -> None:
        self.settings = settings
        self.log = log
        self.dispatcher = Dispatcher(settings, log)

    def job(self, kind: str, name: str, environment: Any, given: Any, **fields: Any) -> Job:
        """The job of running agent or workflow `name` on `given` (a revision of what it runs
        on is stored now); `fields` are the Job's others (run_id, variables, env, session...).

        Raises:
            UsageError: a workflow's inputs do not match its schema (nothing is stored).
        """
        from afctl.ids import new_ulid

        if kind.lower() == "workflow":
            from afctl.runtime.workflow import WorkflowRun

            given = WorkflowRun(name, environment, self.log).check_inputs(dict(given))
        revision = stored_revision(self.log, kind, name, environment)
        run_id = fields.pop("run_id", None) or new_ulid()
        return Job(run_id, kind.lower(), name, revision, given, **fields)

    async def carry(self, job: Job, on_event: Callable[[EventRecord], None] | None = None) -> str:
        """Queue `job` and wait for its run to be done (its status); `on_event` is given each
        of the run's events, in order, as the worker logs them. Cancelling stops the waiting,
        not the run."""
        dispatcher = self.dispatcher
        await dispatcher.enqueue(job)
        done = asyncio.ensure_future(dispatcher.finished(job.run_id))
        seen = 0
        try:
            while True:
                ended = done.done()
                if on_event is not None:
                    for record in self.log.events(job.run_id, after=seen):
                        seen = record.seq
                        on_event(record)
                if ended:
                    return done.result().status
                await asyncio.wait({done}, timeout=TAIL_S)
        finally:
            done.cancel()

    async def cancel(self, run_id: str) -> None:
        """Ask the worker carrying out run `run_id` to stop it (see `Dispatcher.cancel`)."""
        await self.dispatcher.cancel(run_id)

    async def aclose(self) -> None:
        await self.dispatcher.aclose()

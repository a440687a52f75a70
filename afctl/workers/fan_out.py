"""A workflow's `for_each` items over workers: a workflow carried out by a worker queues the
agent run of each item of a `for_each` agent step as a job of its own, which any worker
(this one too) takes.

Each item's run is named before it is queued (from the workflow's run, the step, the item's
index and the attempt), so a workflow that resumes finds the runs its items had: finished,
their results stand; interrupted, they go on from the log.

A workflow waiting for its items holds a thread of its worker; were every thread of every
worker held so, no item would be taken. So an item no worker has taken within TAKE_S is
carried out by the workflow's own worker, on its loop (which is not bounded by the threads).
The item's job stays queued; whichever side starts the run first claims it in Redis, and the
other finds it claimed (and later finished): it is carried out once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from afctl.workers.jobs import Job

if TYPE_CHECKING:
    from afctl.runtime.run_types import RunRequest, RunResult
    from afctl.workers.queueing import RunQueue

TAKE_S = 2.0
"""How long an item's job may wait in the queue before the workflow's worker takes it on."""


class FanOut:
    """The `ItemRunner` of the workflows a worker carries out."""

    def __init__(self, queue: RunQueue, take_on: Callable[[Job], Awaitable[None]]) -> None:
        self.queue = queue
        self.take_on = take_on
        """Carry out an item's job here and now, unless it was taken meanwhile."""

    async def agent(
        self, revision: str, agent: str, text: str, request: RunRequest, *, cache: bool
    ) -> RunResult:
        from afctl.runtime.resumption import recorded_result

        assert request.run_id is not None
        job = Job(request.run_id, "agent", agent, revision, text, dict(request.variables),
                  request.env, eval_id=request.eval_id, repeat=request.repeat, cache=cache,
                  parent_id=request.parent_id)  # fmt: skip
        dispatcher = self.queue.dispatcher
        await dispatcher.enqueue(job)
        done = asyncio.ensure_future(dispatcher.finished(job.run_id))
        try:
            await asyncio.wait({done}, timeout=TAKE_S)
            if not done.done():
                await self.take_on(job)  # unless a worker has taken it meanwhile
            record = await done
        finally:
            done.cancel()
        return recorded_result(self.queue.log, record)

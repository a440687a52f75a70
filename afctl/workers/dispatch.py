"""The queueing side: send jobs to the workers, and wait for their runs to finish by reading
the prompt log (Celery keeps no results; the log is where runs end up).

One poller per dispatcher reads the status of every run still awaited, POLL_S apart, in one
query per batch of ids: ten thousand waiting cases cost one query every 0.1 s, not ten
thousand.

Redis's queue is not quite at-least-once: a job a worker had just popped (BRPOP) when it was
killed, before it wrote the job down as taken, is gone. So while the queue is empty, every
SWEEP_S the dispatcher sends again each job it still waits for that is neither in the queue
nor taken by a worker, unless its run is going with a fresh heartbeat. Jobs are idempotent by
run id, so a job sent twice is carried out once.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from afctl.workers.app import TASK, make_app
from afctl.workers.jobs import Job
from afctl.workers.settings import BrokerSettings

if TYPE_CHECKING:
    from afctl.promptlog.store import PromptLog

POLL_S = 0.1
SWEEP_S = 2.0
BATCH = 500
FINISHED = ("succeeded", "failed", "blocked", "awaiting_approval")
"""A run in one of these is done for whoever waits (`interrupted` is not: its job goes back
to the queue and a worker resumes it)."""


class Dispatcher:
    def __init__(self, settings: BrokerSettings, log: PromptLog) -> None:
        self.settings = settings
        self.app = make_app(settings)
        self.log = log
        self._waiting: dict[str, asyncio.Future[str]] = {}
        self._jobs: dict[str, Job] = {}
        self._poller: asyncio.Task[None] | None = None
        self.sent_again = 0
        """Jobs sent a second time because the broker had lost them."""

    def _send(self, job: Job) -> None:
        self.app.send_task(TASK, args=[job.to_dict()], task_id=job.run_id,
                           queue=self.settings.queue)  # fmt: skip

    async def enqueue(self, job: Job) -> None:
        """Queue `job` (its task id is its run id)."""
        self._jobs[job.run_id] = job
        await asyncio.to_thread(self._send, job)

    async def finished(self, run_id: str) -> str:
        """Wait until run `run_id` is done; its status."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._waiting[run_id] = future
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            return await future
        finally:
            self._waiting.pop(run_id, None)
            self._jobs.pop(run_id, None)

    async def _poll(self) -> None:
        swept = asyncio.get_running_loop().time()
        while self._waiting:
            await asyncio.sleep(POLL_S)
            if asyncio.get_running_loop().time() - swept > SWEEP_S:
                swept = asyncio.get_running_loop().time()
                await self._sweep()
            self.log.flush()
            ids = [i for i, f in self._waiting.items() if not f.done()]
            marks_of = {}
            for start in range(0, len(ids), BATCH):
                chunk = ids[start : start + BATCH]
                marks = ", ".join("?" * len(chunk))
                statuses = ", ".join(f"'{s}'" for s in FINISHED)
                for run_id, status in self.log.sql.execute(
                    f"SELECT id, status FROM runs WHERE id IN ({marks}) AND status IN ({statuses})",
                    chunk,
                ).fetchall():
                    marks_of[run_id] = status
            for run_id, status in marks_of.items():
                future = self._waiting.get(run_id)
                if future is not None and not future.done():
                    future.set_result(status)

    async def _sweep(self) -> None:
        """Send again the awaited jobs the broker lost (see the module's doc)."""
        from afctl.workers.app import taken_or_queued
        from afctl.workers.worker import fresh

        awaited = [i for i, f in self._waiting.items() if not f.done() and i in self._jobs]
        if not awaited:
            return
        held = await asyncio.to_thread(taken_or_queued, self.settings)
        if held is None:  # jobs still wait in the queue: nothing can be told yet
            return
        self.log.flush()
        lost = [i for i in awaited if i not in held]
        going = set()
        for start in range(0, len(lost), BATCH):
            chunk = lost[start : start + BATCH]
            marks = ", ".join("?" * len(chunk))
            for run_id, beat in self.log.sql.execute(
                f"SELECT id, heartbeat_at FROM runs WHERE id IN ({marks}) AND status = 'running'",
                chunk,
            ).fetchall():
                if fresh(beat):
                    going.add(run_id)
        for run_id in lost:
            if run_id not in going:
                import logging

                from afctl.logs import event

                self.sent_again += 1
                event(logging.WARNING, f"the broker lost the job of run {run_id}: sent again",
                      run_id=run_id)  # fmt: skip
                await asyncio.to_thread(self._send, self._jobs[run_id])

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        self.app.close()

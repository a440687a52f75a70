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
import concurrent.futures
from typing import TYPE_CHECKING, Any

from afctl.promptlog.store import RunRecord
from afctl.workers.app import TASK, make_app
from afctl.workers.jobs import Job
from afctl.workers.liveness import FINISHED, fresh
from afctl.workers.settings import BrokerSettings

if TYPE_CHECKING:
    from afctl.promptlog.store import PromptLog

POLL_S = 0.1
SWEEP_S = 2.0
BATCH = 500


class Dispatcher:
    def __init__(self, settings: BrokerSettings, log: PromptLog) -> None:
        self.settings = settings
        self.app = make_app(settings)
        self.log = log
        self._waiting: dict[str, asyncio.Future[RunRecord]] = {}
        self._jobs: dict[str, Job] = {}
        self._poller: asyncio.Task[None] | None = None
        self._cancelled: set[str] = set()
        """Runs asked to stop: `interrupted` ends them too."""
        self._outbox: list[tuple[Job, asyncio.Future[None]]] = []
        self._sender: asyncio.Task[None] | None = None
        self._thread = concurrent.futures.ThreadPoolExecutor(1, "afctl-dispatch")
        """Sends happen in one thread, which keeps Celery's producer and per-thread caches."""

    def _send(self, jobs: list[Job]) -> None:
        with self.app.producer_or_acquire() as producer:
            for job in jobs:
                self.app.send_task(TASK, args=[job.to_dict()], task_id=job.run_id,
                                   queue=self.settings.queue, producer=producer)  # fmt: skip

    async def enqueue(self, job: Job) -> None:
        """Queue `job` (its task id is its run id). Jobs enqueued together are sent together,
        over one connection, in the order they came."""
        self._jobs[job.run_id] = job
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._outbox.append((job, sent))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send_all())
        await sent

    async def _send_all(self) -> None:
        loop = asyncio.get_running_loop()
        while self._outbox:
            batch, self._outbox = self._outbox, []
            try:
                await loop.run_in_executor(self._thread, self._send, [job for job, _ in batch])
            except Exception as exc:  # each waiting side is told
                for _, sent in batch:
                    if not sent.done():
                        sent.set_exception(exc)
                continue
            for _, sent in batch:
                if not sent.done():
                    sent.set_result(None)

    async def cancel(self, run_id: str) -> None:
        """Ask the worker carrying out run `run_id` to stop it (at its next heartbeat); the
        run is recorded `interrupted`, which then ends the wait for it."""
        from afctl.workers.broker import request_cancel

        self._cancelled.add(run_id)
        await asyncio.to_thread(request_cancel, self.settings, run_id)

    async def finished(self, run_id: str) -> RunRecord:
        """Wait until run `run_id` is done; its record."""
        future: asyncio.Future[RunRecord] = asyncio.get_running_loop().create_future()
        self._waiting[run_id] = future
        if self._poller is None or self._poller.done():
            self._poller = asyncio.create_task(self._poll())
        try:
            return await future
        finally:
            self._waiting.pop(run_id, None)
            self._jobs.pop(run_id, None)
            self._cancelled.discard(run_id)

    async def _poll(self) -> None:
        swept = asyncio.get_running_loop().time()
        while self._waiting:
            await asyncio.sleep(POLL_S)
            if asyncio.get_running_loop().time() - swept > SWEEP_S:
                swept = asyncio.get_running_loop().time()
                await self._sweep()
            statuses = ", ".join(f"'{s}'" for s in sorted({*FINISHED, "interrupted"}))
            ids = [i for i, f in self._waiting.items() if not f.done()]
            for row in self._runs(ids, "*", f"status IN ({statuses})"):
                run_id = row["id"]
                future = self._waiting.get(run_id)
                if row["status"] == "interrupted" and run_id not in self._cancelled:
                    continue  # its job goes back to the queue; a worker resumes it
                if future is not None and not future.done():
                    future.set_result(RunRecord(**row))

    def _runs(self, ids: list[str], columns: str, condition: str) -> list[dict[str, Any]]:
        """`columns` of the runs among `ids` that meet `condition`, read in batches."""
        self.log.flush()
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), BATCH):
            chunk = ids[start : start + BATCH]
            marks = ", ".join("?" * len(chunk))
            found.extend(self.log.sql.query(
                f"SELECT {columns} FROM runs WHERE id IN ({marks}) AND {condition}", chunk
            ))  # fmt: skip
        return found

    async def _sweep(self) -> None:
        """Send again the awaited jobs the broker lost (see the module's doc)."""
        from afctl.workers.broker import taken_or_queued

        awaited = [i for i, f in self._waiting.items() if not f.done() and i in self._jobs]
        if not awaited:
            return
        held = await asyncio.to_thread(taken_or_queued, self.settings)
        if held is None:  # jobs still wait in the queue: nothing can be told yet
            return
        lost = [i for i in awaited if i not in held]
        going = {row["id"] for row in self._runs(lost, "id, heartbeat_at", "status = 'running'")
                 if fresh(row["heartbeat_at"])}  # fmt: skip
        for run_id in lost:
            if run_id not in going:
                import logging

                from afctl.logs import event

                event(logging.WARNING, f"the broker lost the job of run {run_id}: sent again",
                      run_id=run_id)  # fmt: skip
                await self.enqueue(self._jobs[run_id])

    async def aclose(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
        self._thread.shutdown(wait=False)
        self.app.close()

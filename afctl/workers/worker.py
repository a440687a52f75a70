"""The worker's side: carrying out jobs, many at once on one event loop.

Celery hands each job to a thread of its pool; the thread gives it to the worker's one event
loop and waits. So one worker process keeps as many runs in flight as its concurrency, all
sharing the process's provider clients and MCP connections, while Celery does the queueing,
acknowledging and redelivering.

A job is idempotent by its run id (`carry_out`):

- no such run yet: it starts, named so;
- finished (succeeded, failed, blocked, awaiting approval): nothing to do;
- `running` with a heartbeat younger than STALE_S: another worker has it (the broker
  delivered it twice): `busy`, and the job is looked at again later;
- `running` with an older heartbeat (its worker was lost), or `interrupted`: it resumes from
  the log (a workflow from its last finished step, an agent run from its model's last
  recorded answer: tool calls with recorded results are not made again).

While runs are in flight the worker records a heartbeat for them every HEARTBEAT_S. On
shutdown (`hand_back`), the runs still going after the grace period are interrupted (recorded
`interrupted`) and their jobs go back to the queue, for a worker to resume.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING, Any

from afctl.errors import AfctlError
from afctl.ids import utc_now
from afctl.workers.jobs import Job
from afctl.workers.liveness import FINISHED, fresh
from afctl.workers.settings import HEARTBEAT_S

if TYPE_CHECKING:
    from afctl.runtime.service import RunService
    from afctl.workers.fan_out import FanOut
    from afctl.workers.settings import BrokerSettings

DONE, BUSY, HANDED_BACK = "done", "busy", "handed_back"
CATALOGS = 64
"""Revisions whose catalogs a worker keeps (a revision never changes: it is a content hash)."""


class WorkerRuntime:
    """The event loop (in a thread of its own) that runs this worker's jobs."""

    def __init__(self, runs: RunService, name: str, broker: BrokerSettings | None = None) -> None:
        self.runs = runs
        self.name = name
        self.broker = broker
        """Where cancel requests are looked up, at each heartbeat (None: nowhere)."""
        self._cancelled: set[str] = set()
        self._fan_out: FanOut | None = None
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name="afctl-worker-loop",
                                        daemon=True)  # fmt: skip
        self._in_flight: dict[str, asyncio.Task[Any]] = {}
        self._catalogs: dict[str, Any] = {}
        """Catalogs by revision: the jobs of one eval share one (and what is derived from it:
        the agent's bundle and hash, its validators)."""
        self._stopping = False
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._beat(), self.loop)

    def _serve(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    # -- from Celery's threads -------------------------------------------------------------

    def carry_out(self, job: Job) -> str:
        """Carry out `job` (blocking): DONE, BUSY (another worker has its run) or HANDED_BACK
        (interrupted by this worker's shutdown; the job should go back to the queue)."""
        return asyncio.run_coroutine_threadsafe(self._carry_out(job), self.loop).result()

    def hand_back(self, grace_s: float) -> None:
        """Shutting down: let the runs in flight finish within `grace_s`, then interrupt the
        rest (their jobs are handed back)."""

        async def stop() -> None:
            self._stopping = True
            deadline = self.loop.time() + grace_s
            while self._in_flight and self.loop.time() < deadline:
                await asyncio.sleep(0.05)
            for task in list(self._in_flight.values()):
                task.cancel()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result()

    def close(self) -> None:
        async def shut() -> None:
            if self._fan_out is not None:
                await self._fan_out.queue.aclose()
            self.runs.logs.flush()
            await self.runs.clients.aclose()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shut(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)

    # -- on the loop -----------------------------------------------------------------------

    async def take_on(self, job: Job) -> None:
        """Carry out a `for_each` item's job here and now, unless a worker has taken it (see
        `fan_out`); a cancellation reaches the workflow waiting for it."""
        await self._carry_out(job, top=False)

    def fan_out(self) -> FanOut | None:
        """What queues the `for_each` items of the workflows this worker carries out."""
        if self.broker is not None and self._fan_out is None:
            from afctl.workers.fan_out import FanOut
            from afctl.workers.queueing import RunQueue

            self._fan_out = FanOut(RunQueue(self.broker, self.runs.logs.log), self.take_on)
        return self._fan_out

    async def _carry_out(self, job: Job, *, top: bool = True) -> str:
        log = self.runs.logs.log
        task = asyncio.current_task()
        assert task is not None
        if job.run_id in self._in_flight:  # delivered twice, to this worker
            return BUSY
        found = log.sql.query("SELECT status, heartbeat_at FROM runs WHERE id = ?", [job.run_id])
        status = found[0]["status"] if found else None
        if status in FINISHED or (job.parent_id and not self._parent_going(job.parent_id)):
            return DONE  # an item's workflow that stopped runs it again as it resumes
        if found:
            if status == "running" and fresh(found[0]["heartbeat_at"]):
                return BUSY
            if status == "running":  # its worker was lost
                log.sql.execute("UPDATE runs SET status = 'interrupted', error_type = "
                                "'interrupted', error = 'its worker was lost' WHERE id = ? "
                                "AND status = 'running'", [job.run_id])  # fmt: skip
            log.sql.execute("UPDATE runs SET worker = ?, heartbeat_at = ? WHERE id = ?",
                            [self.name, utc_now(), job.run_id])  # fmt: skip
            work = self.runs.resume(job.run_id, fan_out=self.fan_out(), worker=self.name,
                                    step_of=job.parent_id)  # fmt: skip
        else:
            if job.parent_id and not await self._claim(job.run_id):
                return BUSY  # the item's workflow (or another worker) started it just now
            work = self._start(job)
        self._in_flight[job.run_id] = task
        try:
            await (asyncio.wait_for(work, job.timeout_s) if job.timeout_s else work)
        except TimeoutError:
            log.finish_run(job.run_id, {"status": "failed", "error_type": "timeout",
                                        "error": f"the case took longer than {job.timeout_s:g} s"},
                           None, {}, str)  # fmt: skip
        except AfctlError as exc:  # it cannot be carried out: a failed run says why, for good
            self._unable(job, exc, started=bool(found))
        except asyncio.CancelledError:
            if job.run_id in self._cancelled and top:  # asked to stop: recorded interrupted
                self._cancelled.discard(job.run_id)
                return DONE
            if not self._stopping or not top:
                raise
            return HANDED_BACK
        finally:
            self._in_flight.pop(job.run_id, None)
        return DONE

    def _parent_going(self, parent_id: str) -> bool:
        found = self.runs.logs.log.sql.query("SELECT status FROM runs WHERE id = ?", [parent_id])
        return bool(found) and found[0]["status"] == "running"

    async def _claim(self, run_id: str) -> bool:
        from afctl.workers.broker import claim_run

        assert self.broker is not None
        return await asyncio.to_thread(claim_run, self.broker, run_id, self.name)

    def _unable(self, job: Job, exc: AfctlError, *, started: bool) -> None:
        """Record that `job` cannot be carried out (its revision, or its target in it, is not
        there): the run ends failed, so whoever waits for it is told."""
        log = self.runs.logs.log
        error = exc.message + (f" ({exc.hint})" if exc.hint else "")
        if not started and not log.sql.query("SELECT id FROM runs WHERE id = ?", [job.run_id]):
            log.start_run({"id": job.run_id, "kind": job.kind, "target": f"{job.kind}/{job.target}",
                           "env": job.env, "eval_id": job.eval_id, "worker": self.name,
                           "is_replay": 0}, str(job.given), job.variables, str)  # fmt: skip
        log.finish_run(job.run_id, {"status": "failed", "error_type": "config", "error": error},
                       None, {}, str)  # fmt: skip

    async def _start(self, job: Job) -> Any:
        from afctl.manifests.catalog import Catalog
        from afctl.runtime.service import sharing_mcp

        log = self.runs.logs.log
        catalog = self._catalogs.get(job.revision)
        if catalog is None:
            if len(self._catalogs) >= CATALOGS:
                self._catalogs.pop(next(iter(self._catalogs)))
            catalog = self._catalogs[job.revision] = Catalog.of_bundle(log.revision(job.revision))
        environment = self.runs.environment(catalog, job.variables)
        cache = None
        if job.cache:
            from afctl.promptlog.cache import ResponseCache

            cache = ResponseCache(log)
        if job.kind == "workflow":
            from afctl.runtime.workflow import WorkflowOptions, WorkflowRun

            options = WorkflowOptions(job.variables, job.env, eval_id=job.eval_id, cache=cache,
                                      repeat=job.repeat, worker=self.name,
                                      fan_out=self.fan_out())  # fmt: skip
            engine = WorkflowRun(job.target, environment, log, options, run_id=job.run_id)
            return await sharing_mcp(environment, engine.run(dict(job.given)))
        from afctl.runtime.agent import AgentRun, LogRecorder
        from afctl.runtime.run_types import RunHooks, RunRequest

        request = RunRequest(job.variables, job.session, job.model, params=dict(job.params),
                             env=job.env, eval_id=job.eval_id, repeat=job.repeat,
                             run_id=job.run_id, worker=self.name,
                             parent_id=job.parent_id)  # fmt: skip
        # the run is committed as it ends, before its job is acknowledged
        agent_run = AgentRun(job.target, environment, LogRecorder(log), request,
                             RunHooks(cache=cache))  # fmt: skip
        return await agent_run.run(str(job.given))

    async def _beat(self) -> None:
        """Every HEARTBEAT_S: the runs in flight are still this worker's; those asked to stop
        (`afctl.workers.app.request_cancel`) are interrupted."""
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            if self._in_flight:
                ids = list(self._in_flight)
                marks = ", ".join("?" * len(ids))
                with contextlib.suppress(Exception):  # a lost connection: the next beat tries
                    self.runs.logs.log.write(
                        f"UPDATE runs SET heartbeat_at = ? WHERE id IN ({marks})",
                        [utc_now(), *ids],
                    )
                    self.runs.logs.flush()
                with contextlib.suppress(Exception):
                    await self._stop_cancelled(ids)

    async def _stop_cancelled(self, ids: list[str]) -> None:
        if self.broker is None:
            return
        from afctl.workers.broker import cancel_requested

        for run_id in await asyncio.to_thread(cancel_requested, self.broker, ids):
            task = self._in_flight.get(run_id)
            if task is not None and run_id not in self._cancelled:
                self._cancelled.add(run_id)
                task.cancel()

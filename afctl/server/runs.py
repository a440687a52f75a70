"""Runs the server started: each one a task on the server's loop with a feed of its events.

A feed numbers a run's events as they happen (text deltas, tool calls starting and their
results, guardrail decisions, handoffs, approvals asked for, the final result), so an SSE
client that reconnects with `Last-Event-ID` gets what it missed. Feeds of finished runs are
kept for the last FEEDS_KEPT runs; older ones are rebuilt from the prompt log (without the
text deltas, which are not logged).

An `Idempotency-Key` names a start: the same key from the same caller with the same request
returns the run it started (for 24 hours, while the server runs); with another request it is a
409. A caller has at most `Limits.max_runs_per_key` runs going at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afctl.errors import AfctlError
from afctl.ids import new_ulid
from afctl.server.problems import Problem

if TYPE_CHECKING:
    from afctl.context import AsyncContext
    from afctl.promptlog.service import Transcript
    from afctl.promptlog.store import EventRecord
    from afctl.runtime.service import RunService
    from afctl.server.limits import Limits
    from afctl.workers.jobs import Job
    from afctl.workers.queueing import RunQueue

FEEDS_KEPT = 1000
IDEMPOTENCY_S = 24 * 3600.0
STREAMED = {"tool_started": "tool_call", "tool_call": "tool_result", "guardrail": "guardrail",
            "handoff": "handoff", "approval_requested": "approval_requested",
            "approval": "approval", "error": "error", "step": "step"}  # fmt: skip
"""Event kinds of the log streamed to clients, and the SSE event type each becomes."""


@dataclass
class Feed:
    """A run's events for its followers, numbered from 1."""

    run_id: str
    events: list[tuple[int, str, dict[str, Any]]] = field(default_factory=list)
    done: bool = False
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def push(self, kind: str, data: dict[str, Any]) -> None:
        self.events.append((len(self.events) + 1, kind, data))
        self._changed.set()
        self._changed = asyncio.Event()

    def finish(self, result: dict[str, Any]) -> None:
        self.push("result", result)
        self.done = True

    async def follow(self, after: int = 0) -> AsyncIterator[tuple[int, str, dict[str, Any]]]:
        """The events after number `after`, then each new one until the run ends."""
        seen = max(after, 0)
        while True:
            for event in self.events[seen:]:
                yield event
            seen = len(self.events)
            if self.done:
                return
            await self._changed.wait()

    def on_text(self, piece: str) -> None:
        self.push("text", {"delta": piece})

    def on_event(self, kind: str, payload: dict[str, Any]) -> None:
        shown = STREAMED.get(kind)
        if shown == "tool_result":
            payload = {k: payload.get(k) for k in ("id", "name", "result", "error")}
        if shown is not None:
            self.push(shown, payload)

    def on_logged(self, record: EventRecord) -> None:
        """An event read back from the prompt log (a tool call's start is its recorded call)."""
        if record.type == "tool_call":
            self.on_event("tool_started", {k: record.payload.get(k)
                                           for k in ("id", "name", "arguments")})  # fmt: skip
        self.on_event(record.type, record.payload)

    def finish_logged(self, transcript: Transcript) -> None:
        """End with the result the prompt log holds for the run."""
        record = transcript.run
        self.finish({**record.to_dict(), "run_id": record.id,
                     "output": transcript.payload.get("output")})  # fmt: skip


Work = Callable[[Feed, str], Awaitable[Any]]
"""What a served run does: (its feed, its id) -> its result."""


def run_hooks(feed: Feed, *, text: bool = True) -> Any:
    """Hooks streaming a run's events (and, with `text`, its text) to its feed."""
    from afctl.runtime.run_types import RunHooks

    return RunHooks(on_text=feed.on_text if text else None, on_event=feed.on_event)


def run_work(
    runs: RunService,
    kind: str,
    target: str,
    given: Any,
    *,
    text: bool = True,
    typed: bool = True,
    **options: Any,
) -> Work:
    """The work of running agent or workflow `target` on `given` (an agent's input text, a
    workflow's inputs), streaming to the run's feed; `options` go to `RunService.run`
    (session, history, model, variables) or, for a workflow, its variables."""

    async def work(feed: Feed, run_id: str) -> Any:
        if kind == "Agent":
            return await runs.run(target, given, run_id=run_id,
                                  hooks=run_hooks(feed, text=text), **options)  # fmt: skip
        return await runs.run_workflow(target, dict(given), typed=typed, run_id=run_id,
                                       on_event=feed.on_event,
                                       variables=options.get("variables"))  # fmt: skip

    return work


def queued_work(queue: RunQueue, job: Job) -> Work:
    """The work of queueing `job` for a worker and following its run in the prompt log (its
    events as the worker logs them; no text deltas, which are not logged). Start it under the
    job's run id."""

    async def work(feed: Feed, run_id: str) -> Any:
        assert run_id == job.run_id
        await queue.carry(job, feed.on_logged)
        # the result is read from the log (`RunManager.start`)

    return work


@dataclass
class ServedRun:
    run_id: str
    kind: str
    target: str
    owner: str
    task: asyncio.Task[Any] | None
    """None for a run an earlier request started and that has ended."""
    feed: Feed
    error: Exception | None = None
    """What ended the run when it was not a result (a workflow's inputs did not fit)."""
    after: int = 0
    """The feed's events before this start (a paused run going on keeps its feed)."""
    queued: bool = False
    """It runs on a worker; this server only follows it."""


class RunManager:
    """The server's runs: started, followed, waited for, cancelled, drained."""

    def __init__(self, context: AsyncContext, limits: Limits) -> None:
        self.context = context
        self.limits = limits
        self.live: dict[str, ServedRun] = {}
        self.feeds: OrderedDict[str, Feed] = OrderedDict()
        self.started: dict[tuple[str, str], tuple[str, str, float]] = {}
        """(caller, Idempotency-Key) -> (request fingerprint, run id, when)."""
        self.accepting = True
        self._draining: asyncio.Future[None] | None = None

    # -- starting --------------------------------------------------------------------------

    def remembered(self, owner: str, key: str | None, request: dict[str, Any]) -> str | None:
        """The run an earlier request with this Idempotency-Key started (None: none did).

        Raises:
            Problem: 409 when the key was used for another request.
        """
        if key is None:
            return None
        now = time.monotonic()
        for stale in [k for k, (_, _, at) in self.started.items() if now - at > IDEMPOTENCY_S]:
            del self.started[stale]
        found = self.started.get((owner, key))
        if found is None:
            return None
        if found[0] != _fingerprint(request):
            raise Problem(409, "this Idempotency-Key was used for another request",
                          hint="use a new key for a new run")  # fmt: skip
        return found[1]

    def start(
        self,
        owner: str,
        kind: str,
        target: str,
        work: Work,
        *,
        idempotency: tuple[str, dict[str, Any]] | None = None,
        run_id: str | None = None,
        queued: bool = False,
    ) -> ServedRun:
        """Start `work(feed, run_id)` as a task; it returns a result with `to_dict()`. A
        `queued` work runs on a worker and this task only follows it (`queued_work`): a drain
        does not wait for it, and stopping the task leaves the run going.

        Raises:
            Problem: 503 while the server drains; 429 past the caller's runs at once.
        """
        if not self.accepting:
            raise Problem(503, "the server is shutting down and starts no runs",
                          headers={"Retry-After": "5"})  # fmt: skip
        self.limits.run_started(owner)
        run_id = run_id or new_ulid()
        feed = self.feeds.get(run_id) or Feed(run_id)
        feed.done = False
        self._keep(feed)

        async def running() -> Any:
            try:
                result = await work(feed, run_id)
            except asyncio.CancelledError:
                if queued:  # the run goes on on its worker: followers are told so
                    feed.push("status", {"run_id": run_id, "status": "running",
                                         "detail": "it runs on a worker; this server stopped "
                                                   "following it"})  # fmt: skip
                    feed.done = True
                else:
                    feed.finish({"run_id": run_id, "status": "interrupted"})
                raise
            except Exception as exc:  # kept for whoever waits; the feed says it
                served.error = exc
                feed.finish({"run_id": run_id, "status": "failed", "error": _said(exc)})
                if not isinstance(exc, AfctlError):
                    from afctl.logs import event

                    event(40, f"run {run_id} failed: internal error {type(exc).__name__}")
                return None
            if queued:
                feed.finish_logged(self.context.services.logs.transcript(run_id))
            else:
                feed.finish(_result_dict(result))
            return result

        served = ServedRun(run_id, kind, target, owner, None, feed, after=len(feed.events),
                           queued=queued)  # fmt: skip
        task = served.task = asyncio.create_task(running())
        self.live[run_id] = served

        def ended(_: asyncio.Task[Any]) -> None:
            self.live.pop(run_id, None)
            self.limits.run_ended(owner)

        task.add_done_callback(ended)
        if idempotency is not None:
            key, request = idempotency
            self.started[(owner, key)] = (_fingerprint(request), run_id, time.monotonic())
        return served

    def _keep(self, feed: Feed) -> None:
        self.feeds[feed.run_id] = feed
        self.feeds.move_to_end(feed.run_id)
        while len(self.feeds) > FEEDS_KEPT:
            oldest, old = next(iter(self.feeds.items()))
            if not old.done:
                break
            del self.feeds[oldest]

    # -- following -------------------------------------------------------------------------

    async def wait(self, served: ServedRun, timeout: float) -> None:
        """Wait up to `timeout` seconds for the run to end (it goes on after that).

        Raises:
            AfctlError: the run could not start (what the caller asked was wrong).
        """
        if served.task is not None:
            await asyncio.wait({served.task}, timeout=timeout)
        if isinstance(served.error, AfctlError):
            raise served.error

    def feed(self, run_id: str) -> Feed:
        """The run's feed: live or kept, or rebuilt from the prompt log.

        Raises:
            UsageError: no such run.
        """
        kept = self.feeds.get(run_id)
        if kept is not None:
            return kept
        transcript = self.context.services.logs.transcript(run_id)
        feed = Feed(transcript.run.id)
        for event in transcript.events:
            feed.on_logged(event)
        record = transcript.run
        if record.status in ("running",):
            feed.push("status", {"run_id": record.id, "status": record.status})
            feed.done = True  # not this server's: nothing more will come here
        else:
            feed.finish_logged(transcript)
        return feed

    def cancel(self, run_id: str) -> bool:
        """Interrupt a run of this server's (it is recorded `interrupted`); False when it is
        not running here."""
        served = self.live.get(run_id)
        if served is None or served.task is None:
            return False
        served.task.cancel()
        return True

    def begin_drain(self, grace_s: float) -> None:
        """A stop was asked: start no more runs, and give the runs going `grace_s` to finish
        from now (their followers' streams end with them, so the server can close)."""
        self.accepting = False
        if self._draining is None:
            self._draining = asyncio.ensure_future(self._drain(grace_s))

    async def drain(self, grace_s: float) -> None:
        """Start nothing more; let the runs going finish for `grace_s`, then interrupt them
        (a workflow run can be resumed, `POST /v1/runs/{id}/resume`)."""
        self.begin_drain(grace_s)
        assert self._draining is not None
        await self._draining

    async def _drain(self, grace_s: float) -> None:
        served = [s for s in self.live.values() if s.task is not None]
        tasks = {s.task for s in served if not s.queued and s.task is not None}
        pending: set[asyncio.Task[Any]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=grace_s)
        # runs on workers go on there; the server stops following them
        pending |= {s.task for s in served if s.queued and s.task is not None}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def _fingerprint(request: dict[str, Any]) -> str:
    text = json.dumps(request, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _result_dict(result: Any) -> dict[str, Any]:
    return result.to_dict() if hasattr(result, "to_dict") else {"result": result}


def _said(exc: BaseException) -> str:
    from afctl.safety.secrets import redact_known

    if isinstance(exc, AfctlError):
        return redact_known(exc.message)
    return f"internal error ({type(exc).__name__})"

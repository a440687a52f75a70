"""The applied workflows' triggers, as `afctl serve` runs them (the HTTP side is the
server's, `afctl.server`):

- webhooks: a request's length and signature checked, its body mapped to inputs (`receive`);
- a scheduler that fires cron schedules, each occurrence claimed in logs.db first, so two
  servers (or a restart) never run the same occurrence twice; occurrences missed while no
  server ran are not made up;
- a file watcher (watchfiles) per `watch` trigger, firing once per debounced batch.

Everything runs on the server's event loop. When the server stops, the scheduler and watchers
stop and running workflows get a grace period to finish, then are interrupted (they can be
resumed).
"""

from __future__ import annotations

import asyncio
import datetime
import fnmatch
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.errors import UsageError
from afctl.logs import event
from afctl.promptlog.store import PromptLog
from afctl.runtime.environment import Catalog, RunEnvironment
from afctl.triggers.definitions import Trigger, next_fire
from afctl.triggers.webhook import (
    Refused,
    check_headers,
    content_length,
    inputs_of,
    signed_correctly,
)

if TYPE_CHECKING:
    from afctl.workers.queueing import RunQueue

GRACE_S = 10.0
"""How long running workflows may take to finish after a stop is asked."""
Clock = Callable[[], datetime.datetime]


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class Launcher:
    """Starts workflow runs for triggers and keeps count of them."""

    environment: RunEnvironment
    log: PromptLog
    env: str
    variables: dict[str, Any] = field(default_factory=dict)
    running: set[asyncio.Task[Any]] = field(default_factory=set)
    on_fire: Callable[[str, str], None] | None = None
    """Told (workflow, trigger type) of each firing (the server counts them for /metrics)."""
    queue: RunQueue | None = None
    """Where the workflows run when workers carry them out (None: on this loop)."""
    following: set[asyncio.Task[Any]] = field(default_factory=set)
    """Waits for queued runs (so a job the broker lost is sent again)."""

    async def fire(self, trigger: Trigger, inputs: dict[str, Any], why: str) -> str:
        """Start the trigger's workflow on `inputs` (or queue it for a worker); returns the
        run id.

        Raises:
            UsageError: the inputs do not match the workflow's schema (nothing starts).
        """
        from afctl.runtime.workflow import WorkflowOptions, WorkflowRun

        if self.queue is not None:
            job = self.queue.job("workflow", trigger.workflow, self.environment, inputs,
                                 variables=dict(self.variables), env=self.env)  # fmt: skip
            run_id, tasks = job.run_id, self.following
            task: asyncio.Task[Any] = asyncio.create_task(self.queue.carry(job))
        else:
            options = WorkflowOptions(dict(self.variables), self.env)
            engine = WorkflowRun(trigger.workflow, self.environment, self.log, options)
            inputs = engine.check_inputs(inputs)
            run_id, tasks = engine.run_id, self.running
            task = asyncio.create_task(engine.run(inputs))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if self.on_fire is not None:
            self.on_fire(trigger.workflow, trigger.type)
        where = " (queued)" if self.queue is not None else ""
        event(20, f"trigger fired: workflow/{trigger.workflow} by {trigger.type} ({why}) -> "
                  f"run {run_id}{where}", workflow=trigger.workflow, trigger=trigger.type,
              run_id=run_id)  # fmt: skip
        return run_id

    async def drain(self, grace_s: float) -> None:
        """Let running workflows finish for `grace_s`, then interrupt the rest (queued ones
        go on on their workers; they are no longer waited for)."""
        pending = set(self.following)
        if self.running:
            _, pending = await asyncio.wait(set(self.running), timeout=grace_s)
            pending |= self.following
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def run_schedules(
    triggers: list[Trigger],
    launcher: Launcher,
    *,
    clock: Clock = _now,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> None:
    """Fire each schedule at its occurrences, forever (cancel to stop)."""
    schedules = [t for t in triggers if t.type == "schedule"]
    if not schedules:
        return
    due = {t.key: next_fire(t, clock()) for t in schedules}
    by_key = {t.key: t for t in schedules}
    while True:
        key = min(due, key=lambda k: due[k])
        when = due[key]
        wait = (when - clock()).total_seconds()
        if wait > 0:
            await sleep(min(wait, 60.0))  # wake at least every minute: clocks jump
            continue
        trigger = by_key[key]
        due[key] = next_fire(trigger, when)
        occurrence = when.isoformat()
        if not launcher.log.trigger_firings.claim(key, occurrence):
            event(20, f"schedule {key} at {occurrence} already fired elsewhere")
            continue
        try:
            await launcher.fire(trigger, dict(trigger.spec.get("input") or {}), occurrence)
        except UsageError as exc:
            event(40, f"workflow/{trigger.workflow}: the schedule's input: {exc.message}")


async def run_watch(trigger: Trigger, root: Path, launcher: Launcher, stop: asyncio.Event) -> None:
    """Fire the trigger once per debounced batch of changes to files matching its globs
    (relative to `root`; `*` matches across folders; the workspace folder is ignored): a
    batch is the changes until `debounce_ms` pass without another."""
    from watchfiles import awatch

    patterns = [str(p) for p in trigger.spec["paths"]]

    def relative(path: str) -> str:
        try:
            return Path(path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return path

    def wanted(_: Any, path: str) -> bool:
        name = relative(path)
        if name.startswith(".afctl/") or "/.afctl/" in name:
            return False
        return any(fnmatch.fnmatch(name, pattern) for pattern in patterns)

    # a batch ends after `debounce_ms` without a change (watchfiles' step), and is cut at
    # four times that (its debounce) when changes never stop
    quiet = max(int(trigger.spec.get("debounce_ms", 500)), 1)
    async for changes in awatch(root, watch_filter=wanted, step=quiet, debounce=4 * quiet,
                                stop_event=stop):  # fmt: skip
        paths = sorted({relative(path) for _, path in changes})
        mapping = trigger.spec.get("input")
        if mapping:
            from afctl.runtime.workflow import StepFailed, render_input

            try:
                inputs = render_input(mapping, {"event": {"paths": paths}}, "trigger input")
            except StepFailed as exc:
                event(40, f"workflow/{trigger.workflow}: the watch's input: {exc.message}")
                continue
        else:
            inputs = {"paths": paths}
        try:
            await launcher.fire(trigger, dict(inputs), ", ".join(paths))
        except UsageError as exc:
            event(40, f"workflow/{trigger.workflow}: the watch's input: {exc.message}")


FOLLOW_S = 1.0
"""How often the server looks for a new apply."""
Reload = Callable[[], "Catalog | None"]
"""The applied resources when they changed since the last call (None: unchanged)."""


class TriggerHost:
    """The applied workflows' triggers for a server: its webhooks (answered by `receive`), and
    its schedules and watches (running while `run` runs). With `reload`, it follows the applied
    state: after an apply, new runs use the new workflow revisions, and the webhooks, schedules
    and watches are those the state now declares."""

    def __init__(
        self,
        triggers: list[Trigger],
        launcher: Launcher,
        root: Path,
        *,
        clock: Clock = _now,
        reload: Reload | None = None,
    ) -> None:
        """Raises UsageError when a signed webhook's secret is not set."""
        self.triggers = triggers
        self.launcher = launcher
        self.root = root
        self.clock = clock
        self.reload = reload
        self.secrets = _webhook_secrets(triggers, launcher)

    def webhook(self, path: str) -> Trigger | None:
        return next((t for t in self.triggers if t.type == "webhook"
                     and str(t.spec["path"]) == path), None)  # fmt: skip

    async def receive(
        self, trigger: Trigger, headers: dict[str, str], read: Callable[[int], Awaitable[bytes]]
    ) -> tuple[int, dict[str, Any]]:
        """Answer a POST to a webhook: `headers` lower-cased, `read(n)` reads the body's n
        bytes. Lengths and signatures are checked before the body is read.

        Raises:
            Refused: the request starts nothing (its status and why).
        """
        length = content_length(headers)  # before anything is read
        secret = self.secrets.get(trigger.key)
        scheme = str(trigger.spec.get("signature", "afctl"))
        signature = check_headers(scheme, headers) if secret is not None else None
        body = await read(length)
        if len(body) != length:
            raise Refused(400, "the body is shorter than its Content-Length")
        path = str(trigger.spec["path"])
        if secret is not None and signature is not None:
            if not signed_correctly(secret, body, headers, scheme):
                event(30, f"webhook {path}: refused a request with a wrong signature")
                raise Refused(401, "the signature does not match")
            if not self.launcher.log.trigger_firings.claim(f"webhook:{trigger.key}",
                                                           signature.nonce):  # fmt: skip
                event(30, f"webhook {path}: refused a replayed request")
                raise Refused(409, "this signed request was delivered already")
        inputs = inputs_of(body, headers, path, trigger.spec.get("input"))
        try:
            run_id = await self.launcher.fire(trigger, inputs, f"POST {path}")
        except UsageError as exc:
            raise Refused(422, exc.message) from None
        return 202, {"run_id": run_id, "workflow": trigger.workflow}

    def _start(self, stop: asyncio.Event) -> list[asyncio.Task[Any]]:
        triggers = list(self.triggers)
        started = [asyncio.create_task(run_schedules(triggers, self.launcher, clock=self.clock))]
        started += [asyncio.create_task(run_watch(t, self.root, self.launcher, stop))
                    for t in triggers if t.type == "watch"]  # fmt: skip
        return started

    async def run(self, stop: asyncio.Event) -> None:
        """Run the schedules and watches, following the applied state, until `stop` is set;
        then let the workflows started finish for GRACE_S and interrupt the rest."""
        tasks = self._start(stop)
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), FOLLOW_S if self.reload else None)
                except TimeoutError:
                    pass
                catalog = None if self.reload is None or stop.is_set() else self.reload()
                if catalog is None:
                    continue
                await _stop_all(tasks)
                _follow(catalog, self.triggers, self.secrets, self.launcher)
                tasks = self._start(stop)
        finally:
            await _stop_all(tasks)
            await self.launcher.drain(GRACE_S)


async def _stop_all(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


def _follow(
    catalog: Catalog, triggers: list[Trigger], secrets: dict[str, str], launcher: Launcher
) -> None:
    """Take on a new applied state: its workflows for new runs, its triggers from now on (a
    webhook whose secret is not set stays off, said in the log)."""
    from afctl.triggers.definitions import triggers_of

    try:
        found = triggers_of(dict(catalog.of_kind("Workflow")))
    except UsageError as exc:
        event(40, f"afctl serve: the applied triggers cannot be served: {exc.message}")
        return
    launcher.environment.catalog = catalog
    usable = []
    fresh: dict[str, str] = {}
    for trigger in found:
        try:
            fresh.update(_webhook_secrets([trigger], launcher))
        except UsageError as exc:
            event(40, f"afctl serve: {exc.message}; that webhook stays off")
            continue
        usable.append(trigger)
    triggers[:] = usable
    secrets.clear()
    secrets.update(fresh)
    event(30, f"afctl serve: the applied state changed; serving {len(usable)} trigger(s)")


def _webhook_secrets(triggers: list[Trigger], launcher: Launcher) -> dict[str, str]:
    """Each signed webhook's secret, resolved now (and remembered for redaction).

    Raises:
        UsageError: a secret's environment variable is not set.
    """
    import os

    from afctl.safety.interpolation import Reference, scan

    resolved = {}
    for trigger in triggers:
        reference = trigger.spec.get("secret")
        if trigger.type != "webhook" or not reference:
            continue
        name = next((r.name for r in scan(str(reference)) if isinstance(r, Reference)), "")
        value = os.environ.get(name)
        if not value:
            raise UsageError(
                f"workflow/{trigger.workflow}: the webhook secret {reference} is not set",
                hint=f"export {name}=... before afctl serve",
            )
        launcher.environment.secrets.remember(value)
        resolved[trigger.key] = value
    return resolved

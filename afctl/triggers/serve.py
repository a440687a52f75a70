"""`afctl serve`: one process that runs the applied workflows' triggers.

- an HTTP server (stdlib, in a thread) for webhooks, `/healthz` and `/metrics`;
- a scheduler that fires cron schedules, each occurrence claimed in logs.db first, so two
  servers (or a restart) never run the same occurrence twice; occurrences missed while no
  server ran are not made up;
- a file watcher (watchfiles) per `watch` trigger, firing once per debounced batch.

Everything that touches the prompt log runs on the event loop; the HTTP thread hands work to
it. SIGTERM or SIGINT stops accepting, stops the scheduler and watchers, gives running
workflows a grace period to finish and then interrupts them (they can be resumed).
"""

from __future__ import annotations

import asyncio
import datetime
import fnmatch
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from afctl.errors import UsageError
from afctl.logs import event
from afctl.promptlog.store import PromptLog
from afctl.runtime.environment import Catalog, RunEnvironment
from afctl.triggers.definitions import Trigger, next_fire
from afctl.triggers.webhook import (
    Refused,
    Signature,
    check_headers,
    content_length,
    inputs_of,
    signed_correctly,
)

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
    fired: dict[tuple[str, str], int] = field(default_factory=dict)
    """(workflow, trigger type) -> firings, for /metrics."""

    async def fire(self, trigger: Trigger, inputs: dict[str, Any], why: str) -> str:
        """Start the trigger's workflow on `inputs`; returns the run id.

        Raises:
            UsageError: the inputs do not match the workflow's schema (nothing starts).
        """
        from afctl.runtime.workflow import WorkflowOptions, WorkflowRun

        options = WorkflowOptions(dict(self.variables), self.env)
        engine = WorkflowRun(trigger.workflow, self.environment, self.log, options)
        inputs = engine.check_inputs(inputs)
        task = asyncio.create_task(engine.run(inputs))
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        key = (trigger.workflow, trigger.type)
        self.fired[key] = self.fired.get(key, 0) + 1
        event(20, f"trigger fired: workflow/{trigger.workflow} by {trigger.type} ({why}) -> "
                  f"run {engine.run_id}", workflow=trigger.workflow, trigger=trigger.type,
              run_id=engine.run_id)  # fmt: skip
        return engine.run_id

    async def drain(self, grace_s: float) -> None:
        """Let running workflows finish for `grace_s`, then interrupt the rest."""
        if not self.running:
            return
        _, pending = await asyncio.wait(set(self.running), timeout=grace_s)
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


MAX_CONNECTIONS = 64
"""Connections served at once; more are answered 503 at once (no thread each)."""
READ_TIMEOUT_S = 10.0
"""How long a connection may stay silent (an idle or half-open one is closed after it)."""
LOOPBACK = ("127.0.0.1", "::1", "localhost")


class _Http(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            try:
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        import sys

        kind = sys.exc_info()[0]
        event(30, f"afctl serve: a request from {client_address[0]} failed "
                  f"({kind.__name__ if kind else 'unknown error'})")  # fmt: skip


def http_server(
    host: str,
    port: int,
    triggers: list[Trigger],
    secrets: dict[str, str],
    loop: asyncio.AbstractEventLoop,
    launcher: Launcher,
) -> ThreadingHTTPServer:
    """The webhook, health and metrics server (not yet serving)."""
    # long because http.server wants a handler class, defined here over these triggers;
    # issue 17 replaces this server with the ASGI app
    import os

    def hooks() -> dict[str, Trigger]:  # read at each request: the triggers follow the state
        return {str(t.spec["path"]): t for t in list(triggers) if t.type == "webhook"}

    metrics_token = os.environ.get(METRICS_TOKEN_ENV) or None

    class Handler(BaseHTTPRequestHandler):
        server_version = "afctl"
        timeout = READ_TIMEOUT_S

        def log_message(self, *args: Any) -> None:
            pass

        def reply(self, status: int, payload: Any, content_type: str = "application/json") -> None:
            body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def on_loop(self, work: Awaitable[Any]) -> Any:
            return asyncio.run_coroutine_threadsafe(work, loop).result(timeout=30)  # type: ignore[arg-type]

        def do_GET(self) -> None:
            if self.path == "/healthz":
                self.reply(200, {"status": "ok", "triggers": len(triggers)})
            elif self.path == "/metrics":
                from afctl.triggers.metrics import prometheus_text

                denied = metrics_denied(metrics_token, self.headers.get("authorization"),
                                        self.client_address[0])  # fmt: skip
                if denied is not None:
                    self.reply(denied.status, {"error": denied.message})
                    return

                async def scrape() -> str:
                    return prometheus_text(launcher.log, launcher.fired)

                text = self.on_loop(scrape())
                self.reply(200, text, "text/plain; version=0.0.4; charset=utf-8")
            else:
                self.reply(404, {"error": f"nothing at {self.path}"})

        def do_POST(self) -> None:
            try:
                status, payload = self.webhook()
            except Refused as refused:
                status, payload = refused.status, {"error": refused.message}
            except UsageError as exc:
                status, payload = 422, {"error": exc.message}
            except Exception as exc:  # never a traceback, never a hung client
                event(40, f"webhook {self.path[:200]}: {type(exc).__name__}")
                status, payload = 500, {"error": "the request could not be handled"}
            self.reply(status, payload)

        def webhook(self) -> tuple[int, dict[str, Any]]:
            trigger = hooks().get(self.path.split("?", 1)[0])
            if trigger is None:
                return 404, {"error": f"no webhook at {self.path[:200]}"}
            headers = {k.lower(): v for k, v in self.headers.items()}
            length = content_length(headers)  # before anything is read
            secret = secrets.get(trigger.key)
            scheme = str(trigger.spec.get("signature", "afctl"))
            signature = check_headers(scheme, headers) if secret is not None else None
            body = self.rfile.read(length)
            if len(body) != length:
                raise Refused(400, "the body is shorter than its Content-Length")
            if secret is not None and signature is not None:
                if not signed_correctly(secret, body, headers, scheme):
                    event(30, f"webhook {self.path}: refused a request with a wrong signature")
                    raise Refused(401, "the signature does not match")
                if not self.on_loop(claim(launcher.log, f"webhook:{trigger.key}", signature)):
                    event(30, f"webhook {self.path}: refused a replayed request")
                    raise Refused(409, "this signed request was delivered already")
            inputs = inputs_of(body, headers, self.path, trigger.spec.get("input"))
            run_id = self.on_loop(launcher.fire(trigger, inputs, f"POST {self.path}"))
            return 202, {"run_id": run_id, "workflow": trigger.workflow}

    return _Http((host, port), Handler)


FOLLOW_S = 1.0
"""How often the server looks for a new apply."""
Reload = Callable[[], "Catalog | None"]
"""The applied resources when they changed since the last call (None: unchanged)."""


async def serve(
    triggers: list[Trigger],
    launcher: Launcher,
    root: Path,
    host: str,
    port: int,
    *,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    clock: Clock = _now,
    reload: Reload | None = None,
) -> None:
    """Run every trigger until `stop` is set (or SIGTERM/SIGINT arrives). With `reload`, the
    server follows the applied state: after an apply, new runs use the new workflow revisions,
    and webhooks, schedules and watches are those the state now declares."""
    import signal

    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread
            pass
    secrets = _webhook_secrets(triggers, launcher)
    server = http_server(host, port, triggers, secrets, loop, launcher)
    for warning in exposure_warnings(host, triggers):
        event(30, warning)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              daemon=True)  # fmt: skip
    thread.start()

    def start() -> list[asyncio.Task[Any]]:
        started = [asyncio.create_task(run_schedules(list(triggers), launcher, clock=clock))]
        started += [asyncio.create_task(run_watch(t, root, launcher, stop))
                    for t in triggers if t.type == "watch"]  # fmt: skip
        return started

    tasks = start()
    address = f"http://{host}:{server.server_address[1]}"
    if on_ready is not None:
        on_ready(address)
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), FOLLOW_S if reload else None)
            except TimeoutError:
                pass
            catalog = None if reload is None or stop.is_set() else reload()
            if catalog is None:
                continue
            await _stop_all(tasks)
            _follow(catalog, triggers, secrets, launcher)
            tasks = start()
    finally:
        server.shutdown()
        server.server_close()
        await _stop_all(tasks)
        await launcher.drain(GRACE_S)
        event(20, "afctl serve stopped")


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


METRICS_TOKEN_ENV = "AFCTL_METRICS_TOKEN"


def metrics_denied(token: str | None, authorization: str | None, client: str) -> Refused | None:
    """Why a /metrics request is refused: with AFCTL_METRICS_TOKEN set it needs that bearer
    token; without it, only this machine may scrape."""
    import hmac

    if token is not None:
        if hmac.compare_digest((authorization or "").strip(), f"Bearer {token}"):
            return None
        return Refused(401, f"/metrics needs Authorization: Bearer <{METRICS_TOKEN_ENV}>")
    if client in LOOPBACK:
        return None
    return Refused(403, f"/metrics is served to this machine only; set {METRICS_TOKEN_ENV} "
                        "to let others scrape it with a bearer token")  # fmt: skip


async def claim(log: PromptLog, key: str, signature: Signature) -> bool:
    """Whether this is the first delivery of a signed request (remembered in logs.db)."""
    return log.trigger_firings.claim(key, signature.nonce)


def exposure_warnings(host: str, triggers: list[Trigger]) -> list[str]:
    """What a server listening on `host` exposes to other machines, said before it starts."""
    import os

    if host in LOOPBACK:
        return []
    warnings = [f"afctl serve listens on {host}: other machines can reach its webhooks"]
    unsigned = [str(t.spec["path"]) for t in triggers if t.type == "webhook"
                and not t.spec.get("secret")]  # fmt: skip
    if unsigned:
        warnings.append("unsigned webhooks anyone there can call: " + ", ".join(unsigned)
                        + " (give them a secret)")  # fmt: skip
    if not os.environ.get(METRICS_TOKEN_ENV):
        warnings.append(f"/metrics answers only this machine until {METRICS_TOKEN_ENV} is set")
    return warnings


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

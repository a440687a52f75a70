"""The ASGI app of `afctl serve` (Starlette), and serving it with uvicorn.

`serve(settings)` opens the workspace (an `AsyncContext` on the running loop), refuses an
address others can reach when nobody has to authenticate, binds the socket, and serves until
SIGTERM or SIGINT. Then it drains: no new connections or runs; running requests and runs get
`grace_s` to finish; what is still running after that is interrupted (recorded `interrupted`;
a workflow run resumes with `POST /v1/runs/{id}/resume`), and the schedules and watches stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from afctl.errors import UsageError
from afctl.server.core import Server, ServeSettings

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request

LIMIT_CONNECTIONS = 1000
"""Connections and requests at once; uvicorn answers 503 past it."""
KEEP_ALIVE_S = 5
ANY_METHOD = ("GET", "POST", "PUT", "PATCH", "DELETE")


def build_app(server: Server) -> Starlette:
    """The app over a started `Server`: the API's routes, then the webhooks."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route

    import afctl.server.routes  # noqa: F401  (declares the routes)
    from afctl.server.api import API, starlette_routes
    from afctl.server.exposure import is_loopback
    from afctl.server.mcp_app import http_endpoint

    stop = asyncio.Event()
    mcp, sessions = http_endpoint(server.context.services.state.catalog, _mcp_run(server),
                                  is_loopback(server.settings.host))  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        triggers = asyncio.create_task(server.triggers.run(stop))
        audit = asyncio.create_task(server.write_audit(stop))
        try:
            async with sessions.run():
                yield
        finally:
            await server.runs.drain(server.settings.grace_s)
            stop.set()
            await triggers
            await audit
            if server.queue is not None:
                await server.queue.aclose()

    middleware = []
    if server.settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(Middleware(CORSMiddleware,
                                     allow_origins=list(server.settings.cors_origins),
                                     allow_methods=["GET", "POST", "DELETE"],
                                     allow_headers=["authorization", "content-type",
                                                    "idempotency-key", "last-event-id",
                                                    "x-afctl-session", "x-request-id"],
                                     expose_headers=["x-request-id", "x-afctl-run-id",
                                                     "location"]))  # fmt: skip
    routes = [*starlette_routes(API), Route("/mcp", mcp, methods=["GET", "POST", "DELETE"]),
              Route("/{path:path}", webhook, methods=list(ANY_METHOD))]  # fmt: skip
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={404: _not_found, 405: _not_allowed})  # fmt: skip
    app.state.server = server
    return app


def _mcp_run(server: Server) -> Any:
    """How an MCP tool call runs: as a run of the caller's, counted against their limits."""
    from afctl.server.problems import Problem
    from afctl.server.runs import run_work

    async def run(kind: str, name: str, arguments: dict[str, Any], request: Any) -> Any:
        principal = request.scope.get("afctl.principal") if request is not None else None
        if principal is None or not principal.may("runner", server.env):
            raise Problem(403, f"running needs the runner role in environment {server.env}")
        runs, target = server.context.services.runs, f"{kind.lower()}/{name}"
        work = (run_work(runs, kind, target, arguments["input"], text=False,
                         session=arguments.get("session")) if kind == "Agent" else
                run_work(runs, kind, target, arguments))  # fmt: skip
        served = server.runs.start(principal.key, kind.lower(), target, work)
        await server.runs.wait(served, server.limits.request_timeout_s)
        if not served.feed.done:
            return {"run_id": served.run_id, "status": "running",
                    "error": f"still going; follow it at /v1/runs/{served.run_id}"}  # fmt: skip
        final: dict[str, Any] = served.feed.events[-1][2]
        server.audit(principal, principal.role_in(server.env) or "", "mcp.call",
                     f"run/{served.run_id} ({kind.lower()}/{name})", 200, "-")  # fmt: skip
        return final

    return run


async def webhook(request: Request) -> Any:
    """A POST to a path no API route has: a webhook trigger's, or nothing."""
    from starlette.routing import Match

    from afctl.server.api import problem_response
    from afctl.server.problems import Problem
    from afctl.triggers.webhook import Refused

    server: Server = request.app.state.server
    path = "/" + request.path_params["path"]
    if any(route.matches(request.scope)[0] is Match.PARTIAL
           for route in request.app.router.routes[:-1]):  # fmt: skip
        return await _not_allowed(request, None)  # an API route, another method
    trigger = server.triggers.webhook(path)
    request_id = request.headers.get("x-request-id", "")[:64] or "-"
    if trigger is None:
        return problem_response(Problem(404, f"nothing at {path[:200]}",
                                        hint="GET /v1/openapi.json lists the API"),
                                request_id)  # fmt: skip
    if request.method != "POST":
        return problem_response(Problem(405, f"the webhook at {path[:200]} takes POST"),
                                request_id)  # fmt: skip
    headers = {k.lower(): v for k, v in request.headers.items()}
    stream = request.stream()

    async def read(length: int) -> bytes:
        body = b""
        async for chunk in stream:
            body += chunk
            if len(body) >= length:
                break
        return body[:length] if len(body) <= length else body

    try:
        status, payload = await server.triggers.receive(trigger, headers, read)
    except Refused as refused:
        return problem_response(Problem(refused.status, refused.message), request_id)
    except Exception as exc:  # never a traceback, never a hung client
        from afctl.logs import event

        event(40, f"webhook {path[:200]}: {type(exc).__name__}")
        return problem_response(Problem(500, "the request could not be handled"), request_id)
    from afctl.server.api import json_response

    return json_response(payload, status)


async def _not_found(request: Request, exc: Exception) -> Any:
    from afctl.server.api import problem_response
    from afctl.server.problems import Problem

    return problem_response(Problem(404, f"nothing at {request.url.path[:200]}",
                                    hint="GET /v1/openapi.json lists the API"), "-")  # fmt: skip


async def _not_allowed(request: Request, exc: Exception | None) -> Any:
    from afctl.server.api import problem_response
    from afctl.server.problems import Problem

    return problem_response(Problem(405, f"{request.method} is not allowed on "
                                         f"{request.url.path[:200]}"), "-")  # fmt: skip


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket (made here, so a taken port is a clear error, not uvicorn's exit).

    Raises:
        UsageError: the address cannot be listened on.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
    # without it a streamed answer's small writes wait on delayed ACKs (40 ms each)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}",
                         hint="pick another --port, or stop what uses it") from None  # fmt: skip
    except (socket.gaierror, UnicodeError):
        sock.close()
        raise UsageError(f"--host {host} is not an address to listen on") from None
    sock.setblocking(False)
    return sock


async def serve(
    settings: ServeSettings,
    *,
    on_ready: Callable[[str, Server], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve the API, webhooks, schedules and watches of one workspace and environment until
    SIGTERM/SIGINT (or `stop` is set). `on_ready(address, server)` is called once it listens.

    Raises:
        UsageError: the address is refused (see `check_bind`), taken, or a trigger is invalid.
    """
    import uvicorn

    from afctl.context import AsyncContext
    from afctl.server.exposure import check_bind, exposure_warnings

    async with AsyncContext(settings.workspace, settings.env) as context:
        server = Server.start(context, settings)
        check_bind(settings.host, auth_configured=server.authenticator.configured(),
                   insecure_no_auth=settings.insecure_no_auth)  # fmt: skip
        sock = _bind(settings.host, settings.port)
        from afctl.logs import event

        for warning in exposure_warnings(settings.host, server.triggers.triggers):
            event(30, warning)
        config = uvicorn.Config(build_app(server), lifespan="on", log_level="warning",
                                access_log=False, server_header=False,
                                timeout_graceful_shutdown=int(settings.grace_s) or 1,
                                timeout_keep_alive=KEEP_ALIVE_S,
                                limit_concurrency=LIMIT_CONNECTIONS)  # fmt: skip
        from sse_starlette.sse import AppStatus

        # sse-starlette would end every event stream of the process once any server stops;
        # afctl's streams end with their runs, which the drain ends within the grace period
        AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]
        loop = asyncio.get_running_loop()

        def draining() -> None:
            server.runs.begin_drain(settings.grace_s)

        uv = _Uvicorn(config, lambda: loop.call_soon_threadsafe(draining))
        task = asyncio.create_task(uv.serve(sockets=[sock]))
        watcher = asyncio.create_task(_stop_on(stop, uv)) if stop is not None else None
        try:
            while not uv.started and not task.done():
                await asyncio.sleep(0.01)
            if uv.started and on_ready is not None:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                on_ready(f"http://{shown}:{port}", server)
            await task
        finally:
            if watcher is not None:
                watcher.cancel()
            sock.close()
            event(20, "afctl serve stopped")


async def _stop_on(stop: asyncio.Event, uv: Any) -> None:
    await stop.wait()
    uv.handle_exit(0, None)


def _uvicorn_class() -> type:
    import signal
    import threading

    import uvicorn

    class Uvicorn(uvicorn.Server):
        """uvicorn, telling afctl the moment a stop is asked (so runs stop starting then),
        and ending normally after a SIGTERM (uvicorn raises the signal again once it has
        stopped, which would kill the process instead of letting afctl exit 0)."""

        def __init__(self, config: Any, on_exit: Callable[[], Any]) -> None:
            super().__init__(config)
            self.on_exit = on_exit

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.on_exit()
            super().handle_exit(sig, frame)

        @contextlib.contextmanager
        def capture_signals(self) -> Any:
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            handled = (signal.SIGINT, signal.SIGTERM)
            originals = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
            try:
                yield
            finally:
                for sig, handler in originals.items():
                    signal.signal(sig, handler)

    return Uvicorn


def _Uvicorn(config: Any, on_exit: Callable[[], Any]) -> Any:
    return _uvicorn_class()(config, on_exit)

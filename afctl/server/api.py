"""Routes declared once: method, path, the role a caller needs, the audit action, the request
and response schemas. From the declarations come the Starlette routes (each wrapped in the
same checks), the OpenAPI 3.1 document and the auth-matrix test's list of routes.

What every route gets, in order: a request id (`X-Request-Id`, the caller's when it is sane);
the caller's principal and role in the server's environment (401/403); the caller's rate
limit (429 with `Retry-After`); the body, read up to the cap (413), parsed (400) and checked
against the route's schema (422, unknown fields included); query parameters checked against
theirs (422). Errors of any type come back as problem+json; a mutating route writes an audit
record however it ends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afctl.errors import AfctlError
from afctl.server.problems import MEDIA_TYPE, Problem, from_error

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from afctl.server.auth import Principal
    from afctl.server.core import Server

Handler = Callable[["Call"], Awaitable[Any]]
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


@dataclass
class Call:
    """One request as a route handler sees it."""

    request: Request
    server: Server
    principal: Principal | None
    request_id: str
    params: dict[str, str]
    query: dict[str, Any]
    body: Any = None
    target: str = ""
    """What the call acts on, for the audit record (the handler sets it)."""
    role: str = ""

    @property
    def env(self) -> str:
        return self.server.env


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    role: str | None
    """The least role that may call it (None: anyone, no credential)."""
    summary: str
    tag: str
    action: str | None = None
    """Set on mutating routes: the audit record's action."""
    body: dict[str, Any] | None = None
    query: dict[str, dict[str, Any]] = field(default_factory=dict)
    response: dict[str, Any] | None = None
    status: int = 200
    media: str = "application/json"
    statuses: tuple[int, ...] = ()
    """Other statuses it answers with success (202 for a run left in the background)."""

    @property
    def operation_id(self) -> str:
        return self.handler.__name__


class Api:
    """The set of declared routes."""

    def __init__(self) -> None:
        self.endpoints: list[Endpoint] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        role: str | None,
        summary: str,
        tag: str,
        action: str | None = None,
        body: dict[str, Any] | None = None,
        query: dict[str, dict[str, Any]] | None = None,
        response: dict[str, Any] | None = None,
        status: int = 200,
        media: str = "application/json",
        statuses: tuple[int, ...] = (),
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(Endpoint(method, path, handler, role, summary, tag, action,
                                           body, dict(query or {}), response, status, media,
                                           statuses))  # fmt: skip
            return handler

        return register


API = Api()
"""The routes of afctl's API (`afctl.server.routes` declares them)."""


def obj(properties: dict[str, Any], required: tuple[str, ...] = (), **more: Any) -> dict[str, Any]:
    """A JSON Schema object that allows no other fields."""
    return {"type": "object", "properties": properties, "required": list(required),
            "additionalProperties": False, **more}  # fmt: skip


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Any:
    from starlette.responses import Response

    body = json.dumps(data, ensure_ascii=False, default=str).encode()
    return Response(body, status, headers, media_type="application/json")


def problem_response(problem: Problem, request_id: str, *, openai: bool = False) -> Response:
    """The problem as an answer; `openai`: with OpenAI's `error` object too, so OpenAI
    clients show its message."""
    from starlette.responses import Response

    data = problem.body(request_id)
    if openai:
        data["error"] = {"message": problem.detail, "type": problem.kind, "code": problem.status}
    body = json.dumps(data, ensure_ascii=False).encode()
    return Response(body, problem.status, problem.headers, media_type=MEDIA_TYPE)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 past `limit` bytes (by its Content-Length before anything is
    read, or as it streams in)."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise Problem(400, "the Content-Length is not a number of bytes")
        if int(length) > limit:
            raise Problem(413, f"the body is over {limit} bytes", hint="send less at once")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"the body is over {limit} bytes", hint="send less at once")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(raw: bytes) -> Any:
    try:
        return json.loads(raw or b"null")
    except RecursionError:
        raise Problem(400, "the body's JSON nests too deeply") from None
    except ValueError as exc:
        raise Problem(400, f"the body is not JSON ({exc})") from None


_VALIDATORS: dict[int, Any] = {}


def check(schema: dict[str, Any], value: Any, where: str) -> None:
    """Raises Problem 422 naming the first place `value` breaks `schema`."""
    import jsonschema_rs

    validator = _VALIDATORS.get(id(schema))
    if validator is None:
        validator = _VALIDATORS[id(schema)] = jsonschema_rs.validator_for(schema)
    for error in validator.iter_errors(value):
        pointer = "/".join(str(p) for p in error.instance_path)
        place = f"{where}/{pointer}" if pointer else where
        raise Problem(422, f"{place}: {error.message}"[:500])


def query_values(endpoint: Endpoint, request: Request) -> dict[str, Any]:
    """The route's query parameters, typed; an unknown or badly typed one is a 422."""
    values: dict[str, Any] = {}
    for name, text in request.query_params.items():
        schema = endpoint.query.get(name)
        if schema is None:
            known = ", ".join(sorted(endpoint.query)) or "none"
            raise Problem(422, f"unknown query parameter {name!r} (known: {known})")
        kind = schema.get("type")
        value: Any = text
        if kind == "integer":
            if not re.fullmatch(r"-?\d{1,12}", text):
                raise Problem(422, f"query parameter {name} must be an integer")
            value = int(text)
        elif kind == "boolean":
            if text not in ("true", "false"):
                raise Problem(422, f"query parameter {name} must be true or false")
            value = text == "true"
        check(schema, value, f"query parameter {name}")
        values[name] = value
    return values


def starlette_routes(api: Api) -> list[Any]:
    """Each declared route as a Starlette route wrapped in the common checks (the server is
    the app's, `app.state.server`)."""
    from starlette.routing import Route

    by_path: dict[str, list[Endpoint]] = {}
    for endpoint in api.endpoints:
        by_path.setdefault(endpoint.path, []).append(endpoint)
    routes = []
    for path, endpoints in by_path.items():
        methods = {e.method: e for e in endpoints}
        routes.append(Route(path, _dispatch(methods), methods=list(methods)))
    return routes


def _dispatch(methods: dict[str, Endpoint]) -> Callable[[Request], Awaitable[Any]]:
    async def endpoint(request: Request) -> Any:
        chosen = methods.get(request.method) or (methods.get("GET")
                                                 if request.method == "HEAD" else None)  # fmt: skip
        assert chosen is not None  # Starlette answers 405 for other methods
        return await handle(chosen, request, request.app.state.server)

    return endpoint


async def handle(endpoint: Endpoint, request: Request, server: Server) -> Any:
    """Run one request through the checks and the route's handler."""
    given = request.headers.get("x-request-id", "")
    from afctl.ids import new_ulid

    request_id = given if REQUEST_ID.match(given) else new_ulid()
    call = Call(request, server, None, request_id, dict(request.path_params), {})
    status = 500
    try:
        if server.settings.insecure_no_auth:
            _check_host(request)
        if endpoint.role is not None:
            call.principal = _authenticated(server, request)
            role = call.principal.role_in(server.env)
            call.role = role or ""
            if not call.principal.may(endpoint.role, server.env):
                raise Problem(403, f"this needs the {endpoint.role} role in environment "
                                   f"{server.env}; you have "
                                   + (f"{role}" if role else "no role there"))  # fmt: skip
            server.limits.admit(call.principal.key)
        call.query = query_values(endpoint, request)
        if endpoint.body is not None:
            call.body = parse_json(await read_body(request, server.limits.max_body))
            check(endpoint.body, call.body, "body")
        result = await endpoint.handler(call)
        response = result if _is_response(result) else json_response(result, endpoint.status)
    except Problem as problem:
        response = problem_response(problem, request_id, openai=endpoint.tag == "openai")
    except AfctlError as exc:
        response = problem_response(from_error(exc), request_id, openai=endpoint.tag == "openai")
    except Exception as exc:  # never a traceback, never a hung client
        from afctl.logs import event

        event(40, f"{request.method} {request.url.path}: internal error "
                  f"{type(exc).__name__} (request {request_id})")  # fmt: skip
        internal = Problem(500, "the request could not be handled; the server's log has more",
                           kind="internal")  # fmt: skip
        response = problem_response(internal, request_id)
    status = response.status_code
    response.headers["x-request-id"] = request_id
    if endpoint.action is not None:
        server.audit(call.principal, call.role, endpoint.action, call.target, status,
                     request_id)  # fmt: skip
    server.metrics.request(endpoint.path, endpoint.method, status)
    return response


def _authenticated(server: Server, request: Request) -> Principal:
    """The caller's principal. Failed attempts count against the caller's address, so
    guessing keys (or filling the audit log with refusals) is slowed to the rate limit.

    Raises:
        Problem: 401, or 429 past the rate limit of failures from one address.
    """
    try:
        return server.authenticator.principal(request.headers.get("authorization"))
    except Problem:
        server.limits.admit("address:" + (request.client.host if request.client else "-"))
        raise


def _check_host(request: Request) -> None:
    """With --insecure-no-auth, only requests addressed to this machine are served: a web page
    elsewhere cannot reach the API by pointing a name of its own at 127.0.0.1 (DNS rebinding).

    Raises:
        Problem: 403 for another Host.
    """
    from afctl.server.exposure import is_loopback

    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]")[0]
    if not is_loopback(name):
        raise Problem(403, f"this server (--insecure-no-auth) answers requests to this machine "
                           f"only, not to {host[:100]!r}")  # fmt: skip


def _is_response(value: Any) -> bool:
    from starlette.responses import Response

    return isinstance(value, Response)

"""The server about itself: liveness, readiness, metrics, and the API's own description."""

from __future__ import annotations

import os
from typing import Any

from afctl.server.api import API, Call
from afctl.server.problems import Problem

STATUS = {"type": "object", "properties": {"status": {"type": "string"}}, "required": ["status"]}


@API.route("GET", "/healthz", role=None, tag="server", summary="Liveness: the server answers",
           response=STATUS)  # fmt: skip
async def healthz(call: Call) -> Any:
    return {"status": "ok"}


@API.route("GET", "/readyz", role=None, tag="server",
           summary="Readiness: the workspace is readable and its databases are migrated",
           response=STATUS, statuses=(503,))  # fmt: skip
async def readyz(call: Call) -> Any:
    services = call.server.context.services
    try:
        store = services.state.store(create=True)
        assert store is not None
        store.serial(call.env)
        services.logs.log.flush()
    except Exception as exc:
        raise Problem(503, f"the workspace is not ready ({type(exc).__name__})",
                      headers={"Retry-After": "5"}) from None  # fmt: skip
    if not call.server.runs.accepting:
        raise Problem(503, "the server is shutting down", headers={"Retry-After": "5"})
    return {"status": "ready", "env": call.env}


@API.route("GET", "/metrics", role=None, tag="server",
           summary="Prometheus metrics (this machine only, or with AFCTL_METRICS_TOKEN)",
           media="text/plain")  # fmt: skip
async def metrics(call: Call) -> Any:
    from starlette.responses import Response

    from afctl.server.exposure import METRICS_TOKEN_ENV, metrics_denied
    from afctl.server.metrics import CONTENT_TYPE

    client = call.request.client.host if call.request.client else ""
    denied = metrics_denied(os.environ.get(METRICS_TOKEN_ENV) or None,
                            call.request.headers.get("authorization"), client)  # fmt: skip
    if denied is not None:
        raise denied
    return Response(call.server.metrics.text(), 200, media_type=CONTENT_TYPE)


@API.route("GET", "/v1/openapi.json", role=None, tag="server",
           summary="This API, described in OpenAPI 3.1", response={"type": "object"})  # fmt: skip
async def openapi(call: Call) -> Any:
    from afctl.server.openapi import document

    return document(API)

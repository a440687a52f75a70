"""`afctl serve`: the applied workspace as a service.

One ASGI app (Starlette on uvicorn): the REST API under `/v1` (described at
`/v1/openapi.json`), OpenAI-compatible `/v1/models` and `/v1/chat/completions`, the webhooks,
schedules and watches of the applied workflows, `/healthz`, `/readyz` and `/metrics`. Callers
authenticate with API keys or JWTs and act within a role in the server's environment.

    import asyncio
    from afctl.server import ServeSettings, serve
    asyncio.run(serve(ServeSettings(port=8080)))
"""

from afctl.server.app import build_app, serve
from afctl.server.core import Server, ServeSettings

__all__ = ["ServeSettings", "Server", "build_app", "serve"]

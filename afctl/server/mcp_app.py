"""The applied agents and workflows as MCP tools, through the official `mcp` SDK's server.

Each applied agent is a tool `agent_NAME` taking `{"input": text, "session": name?}`; each
workflow a tool `workflow_NAME` taking its inputs schema. A call runs it (recorded in the
prompt log like any run) and answers with the output as text (a workflow's outputs also as
structured content); a run that fails answers `isError` with why. The list is read from the
applied state at each request, so an apply shows at once.

`afctl serve` offers them at `/mcp` (streamable HTTP, stateless, under the same credentials
and roles as the REST API: listing needs viewer, calling runner); `afctl mcp serve` over stdio
for local clients (IDEs, desktop apps), with the rights of whoever starts it.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from afctl._version import __version__
from afctl.errors import AfctlError
from afctl.server.problems import Problem

if TYPE_CHECKING:
    from mcp.server.lowlevel.server import Server as McpServer

    from afctl.manifests.catalog import Catalog

KINDS = {"agent": "Agent", "workflow": "Workflow"}
AGENT_INPUT = {
    "type": "object",
    "properties": {
        "input": {"type": "string", "description": "What to ask the agent"},
        "session": {"type": "string", "description": "A conversation to continue (optional)"},
    },
    "required": ["input"],
    "additionalProperties": False,
}
RunTool = Callable[[str, str, dict[str, Any], Any], Awaitable[dict[str, Any]]]
"""(kind, name, arguments, the HTTP request or None) -> the run's result (`to_dict()`)."""


def tool_name(kind: str, name: str) -> str:
    return f"{kind.lower()}_{name}"


def parse_tool(tool: str) -> tuple[str, str] | None:
    """(kind, name) of a tool name made by `tool_name`."""
    prefix, _, name = tool.partition("_")
    kind = KINDS.get(prefix)
    return (kind, name) if kind is not None and name else None


def _description(kind: str, name: str, document: dict[str, Any]) -> str:
    described = (document.get("metadata") or {}).get("description")
    what = "agent" if kind == "Agent" else "workflow"
    return str(described or f"Run the afctl {what} {name}")


def mcp_server(catalog: Callable[[], Catalog], run: RunTool) -> McpServer[Any]:
    """An MCP server (low-level API) listing the applied agents and workflows of `catalog()`
    and running them with `run`."""
    import mcp_types as types
    from mcp.server.lowlevel.server import Server

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        found = catalog()
        tools = []
        for kind in KINDS.values():
            for name, document in sorted(found.of_kind(kind).items()):
                inputs = (document.get("spec") or {}).get("inputs") or {"type": "object"}
                schema = AGENT_INPUT if kind == "Agent" else dict(inputs)
                described = _description(kind, name, document)
                tools.append(types.Tool(name=tool_name(kind, name), input_schema=schema,
                                        description=described))  # fmt: skip
        return types.ListToolsResult(tools=tools)

    def failed(text: str) -> types.CallToolResult:
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                    is_error=True)  # fmt: skip

    async def call_tool(ctx: Any, params: Any) -> types.CallToolResult:
        parsed = parse_tool(str(params.name))
        if parsed is None or catalog().find(*parsed) is None:
            return failed(f"no applied agent or workflow is the tool {params.name!r}")
        kind, name = parsed
        arguments = dict(params.arguments or {})
        if kind == "Agent" and not isinstance(arguments.get("input"), str):
            return failed('an agent takes {"input": "text"}')
        try:
            result = await run(kind, name, arguments, getattr(ctx, "request", None))
        except AfctlError as exc:
            from afctl.safety.secrets import redact_known

            return failed(redact_known(exc.message))
        except Problem as problem:
            return failed(problem.detail)
        status = result.get("status")
        if status != "succeeded":
            return failed(f"run {result.get('run_id')} {status}: {result.get('error') or ''}")
        if kind == "Workflow":
            outputs = result.get("outputs")
            text = json.dumps(outputs, ensure_ascii=False)
            structured = outputs if isinstance(outputs, dict) else {"outputs": outputs}
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)],
                                        structured_content=structured)  # fmt: skip
        output = str(result.get("output") or "")
        return types.CallToolResult(content=[types.TextContent(type="text", text=output)])

    return Server("afctl", version=__version__, on_list_tools=list_tools,
                  on_call_tool=call_tool)  # fmt: skip


async def serve_stdio(workspace: str | None, env: str | None) -> None:
    """`afctl mcp serve`: the tools over stdin/stdout until the client closes them."""
    from mcp.server.stdio import stdio_server

    from afctl.context import AsyncContext

    async with AsyncContext(workspace, env) as context:
        services = context.services

        async def run(kind: str, name: str, arguments: dict[str, Any], _: Any) -> dict[str, Any]:
            if kind == "Agent":
                result: Any = await services.runs.run(f"agent/{name}", arguments["input"],
                                                      session=arguments.get("session"))  # fmt: skip
            else:
                result = await services.runs.run_workflow(f"workflow/{name}", arguments,
                                                          typed=True)  # fmt: skip
            return dict(result.to_dict())

        server = mcp_server(services.state.catalog, run)
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())


def http_endpoint(catalog: Callable[[], Catalog], run: RunTool, loopback: bool) -> Any:
    """`/mcp` for `afctl serve`: (the ASGI app, its session manager to run in the lifespan).
    The app authenticates each request as the REST API does (viewer at least) and leaves
    the principal in the request's scope for `run` to check."""
    from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
    from mcp.server.transport_security import TransportSecuritySettings

    security = None
    if loopback:  # a browser page on another site must not reach it through DNS rebinding
        security = TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
            allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
        )
    manager = StreamableHTTPSessionManager(app=mcp_server(catalog, run), stateless=True,
                                           security_settings=security)  # fmt: skip

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        from starlette.requests import Request

        from afctl.server.api import problem_response

        request = Request(scope, receive)
        server = request.app.state.server
        try:
            principal = server.authenticator.principal(request.headers.get("authorization"))
            if not principal.may("viewer", server.env):
                raise Problem(403, f"MCP needs a role in environment {server.env}")
            server.limits.admit(principal.key)
        except Problem as problem:
            await problem_response(problem, "-")(scope, receive, send)
            return
        scope["afctl.principal"] = principal
        await manager.handle_request(scope, receive, send)

    return _Asgi(asgi), manager


class _Asgi:
    """An ASGI app Starlette routes to as it is (a plain function would be taken for a
    request handler)."""

    def __init__(self, app: Callable[[Any, Any, Any], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

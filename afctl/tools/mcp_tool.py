"""MCP tools (`type: mcp`): the tools of a Model Context Protocol server, through the official
`mcp` SDK, over stdio (afctl starts the server) or streamable HTTP.

A server is connected once per run, when an agent that lists it first needs its tools, and
closed when the run ends (the process is stopped). A server that does not start within the
tool's `timeout_s` fails the run with what it printed; one that dies later turns each call into
a tool error the model reads, never a hang.
"""

from __future__ import annotations

import json
import tempfile
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from afctl.errors import RunError
from afctl.providers.types import ToolSpec
from afctl.tools.base import ToolFailed

if TYPE_CHECKING:
    from afctl.runtime.environment import RunEnvironment

DEFAULT_START_TIMEOUT_S = 30.0
_STDERR_TAIL = 600


class McpTool:
    def __init__(
        self, server: str, session: Any, name: str, spec: ToolSpec, timeout_s: float | None
    ):
        self.server = server
        self.session = session
        self.remote_name = name
        self.spec = spec
        self.timeout_s = timeout_s

    async def call(self, arguments: dict[str, Any]) -> Any:
        try:
            result = await self.session.call_tool(
                self.remote_name, arguments, read_timeout_seconds=self.timeout_s
            )
        except Exception as exc:  # the connection closed, the server died, a protocol error
            raise ToolFailed(f"MCP server {self.server} did not answer: {_describe(exc)}") from None
        text = _content_text(result)
        if result.is_error:
            raise ToolFailed(text or f"{self.remote_name} failed")
        return text


def _content_text(result: Any) -> str:
    parts = []
    for block in result.content or []:
        if getattr(block, "type", None) == "text":
            parts.append(block.text)
        else:
            parts.append(f"[{getattr(block, 'type', 'other')} content]")
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


async def connect(
    resource: str, spec: dict[str, Any], environment: RunEnvironment, stack: AsyncExitStack
) -> list[McpTool]:
    """Start (or reach) the server, list its tools, and return those the agent may use.

    Raises:
        RunError: the server did not start or answer in time, or an allow-listed tool is
            missing from it.
    """
    import asyncio

    from mcp import ClientSession

    grant = environment.allowed  # checked before anything starts or connects
    grant.references(spec)
    resolve = environment.secrets.resolve
    if spec.get("transport") == "http":
        grant.url(resolve(str(spec.get("url"))))
    else:
        grant.command(str(spec.get("command")))
    start_timeout = float(spec.get("timeout_s") or DEFAULT_START_TIMEOUT_S)
    # the server's stderr: shown when it fails to start, otherwise kept off the terminal
    errlog = stack.enter_context(tempfile.TemporaryFile(mode="w+", encoding="utf-8"))  # noqa: SIM115
    try:
        async with asyncio.timeout(start_timeout):
            if spec.get("transport") == "http":
                import httpx2
                from mcp.client.streamable_http import streamable_http_client

                headers = {k: resolve(str(v)) for k, v in (spec.get("headers") or {}).items()}
                client = await stack.enter_async_context(
                    httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(start_timeout))
                )
                streams = await stack.enter_async_context(
                    streamable_http_client(resolve(str(spec["url"])), http_client=client)
                )
            else:
                from mcp.client.stdio import StdioServerParameters, stdio_client

                cwd = grant.folder / str(spec.get("cwd", ".")) if not grant.confined else (
                    grant.folder)  # fmt: skip
                parameters = StdioServerParameters(
                    command=str(spec["command"]),
                    args=[str(a) for a in spec.get("args") or []],
                    env={k: resolve(str(v)) for k, v in (spec.get("env") or {}).items()},
                    cwd=str(cwd),
                )
                streams = await stack.enter_async_context(stdio_client(parameters, errlog=errlog))
            read, write = streams[0], streams[1]
            session = await stack.enter_async_context(ClientSession(read, write))
            await session.initialize()
            listed = []
            cursor = None
            while True:
                from mcp import types

                page = await session.list_tools(
                    params=types.PaginatedRequestParams(cursor=cursor) if cursor else None
                )
                listed.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
    except Exception as exc:
        errlog.seek(0)
        printed = errlog.read()[-_STDERR_TAIL:].strip()
        reason = "it did not answer within " + f"{start_timeout:g} s" if isinstance(
            exc, TimeoutError) else _describe(exc)  # fmt: skip
        raise RunError(
            f"MCP server {resource} did not start: {reason}"
            + (f"; it printed: {printed}" if printed else ""),
            hint="check the command (or url) of the Tool and run it by hand",
        ) from None
    prefix = str(spec.get("prefix") or "")
    wanted = spec.get("tools")
    by_name = {tool.name: tool for tool in listed}
    if wanted:
        missing = [name for name in wanted if name not in by_name]
        if missing:
            raise RunError(
                f"MCP server {resource} has no tool {', '.join(missing)}",
                hint="it has: " + ", ".join(sorted(by_name)),
            )
    timeout = spec.get("timeout_s")
    return [
        McpTool(
            resource,
            session,
            tool.name,
            ToolSpec(
                prefix + tool.name,
                tool.description or f"{tool.name} (from MCP server {resource})",
                dict(tool.input_schema or {"type": "object", "properties": {}}),
            ),
            None if timeout is None else float(timeout),
        )
        for tool in listed
        if not wanted or tool.name in wanted
    ]

"""MCP tools (`type: mcp`): the tools of a Model Context Protocol server, through the official
`mcp` SDK, over stdio (afctl starts the server) or streamable HTTP.

A server is started (or reached) on the first call of one of its tools, not before, and one
connection serves every run and eval case of the event loop (an `McpPool`); it is stopped when
the pool closes. The tools it offers are listed when it starts and remembered in the workspace
(`.afctl/mcp-tools.json`, by the server's command, arguments, environment and URL as written),
so a later run offers them to its model without starting anything; a server never started
before is started once to list them. An offline replay starts nothing: tool lists come from
that file or from the recorded run. A server that does not start within the tool's
`timeout_s` fails the listing with what it printed (or, when listed already, the call, as a
tool error the model reads); one that dies later turns each call into a tool error, never a
hang.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.errors import RunError
from afctl.providers.types import ToolSpec
from afctl.tools.base import ToolFailed

if TYPE_CHECKING:
    from afctl.tool_context import ToolContext

DEFAULT_START_TIMEOUT_S = 30.0
LISTINGS = "mcp-tools.json"
_STDERR_TAIL = 600
_IDENTITY = ("transport", "command", "args", "env", "cwd", "url", "headers")
"""What makes a server the same server (its tool filters and prefix do not)."""


def identity(spec: dict[str, Any]) -> str:
    """A server's key: its spec as written (references unresolved, so no secret in it)."""
    data = {k: spec.get(k) for k in _IDENTITY}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


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


def _env_names(spec: dict[str, Any]) -> list[str]:
    from afctl.safety.capabilities import env_references

    return sorted(set(env_references(spec)))


class McpServer:
    """One server: started on first use in a task of its own (the SDK's streams must be
    opened and closed in one task), shared by every caller of the event loop."""

    def __init__(
        self,
        resource: str,
        spec: dict[str, Any],
        environment: ToolContext,
        on_listed: Any = None,
    ) -> None:
        self.on_listed = on_listed
        """Told the tools the server lists when it starts (the pool remembers them)."""
        self.resource = resource
        self.spec = spec
        self.environment = environment
        self.timeout = float(spec.get("timeout_s") or DEFAULT_START_TIMEOUT_S)
        self._ready: asyncio.Future[Any] | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.listed: list[dict[str, Any]] | None = None
        """The tools it listed when it started (name, description, input_schema)."""

    @property
    def started(self) -> bool:
        return self._task is not None

    async def session(self) -> Any:
        """The server's session, started on the first call.

        Raises:
            RunError: it did not start or answer in time (with what it printed).
        """
        if self._ready is None:
            loop = asyncio.get_running_loop()
            self._ready, self._stop = loop.create_future(), asyncio.Event()
            self._task = asyncio.create_task(self._serve(), name=f"mcp {self.resource}")
        return await asyncio.shield(self._ready)

    async def _serve(self) -> None:
        assert self._ready is not None and self._stop is not None
        # the server's stderr: shown when it fails to start, otherwise kept off the terminal
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as errlog:
            try:
                async with AsyncExitStack() as stack:
                    async with asyncio.timeout(self.timeout):
                        session = await self._open(stack, errlog)
                    self._ready.set_result(session)
                    await self._stop.wait()
            except BaseException as exc:
                if self._ready.done():
                    return  # stopped, or died after it started: calls say so
                errlog.seek(0)
                printed = errlog.read()[-_STDERR_TAIL:].strip()
                reason = (f"it did not answer within {self.timeout:g} s"
                          if isinstance(exc, TimeoutError) else _describe(exc))  # fmt: skip
                self._ready.set_exception(RunError(
                    f"MCP server {self.resource} did not start: {reason}"
                    + (f"; it printed: {printed}" if printed else ""),
                    hint="check the command (or url) of the Tool and run it by hand",
                ))  # fmt: skip
                if isinstance(exc, asyncio.CancelledError):
                    raise

    async def _open(self, stack: AsyncExitStack, errlog: Any) -> Any:
        from mcp import ClientSession, types

        spec, grant = self.spec, self.environment.allowed
        resolve = self.environment.secrets.resolve
        if spec.get("transport") == "http" or (spec.get("url") and not spec.get("command")):
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            headers = {k: resolve(str(v)) for k, v in (spec.get("headers") or {}).items()}
            client = await stack.enter_async_context(
                httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(self.timeout))
            )
            streams = await stack.enter_async_context(
                streamable_http_client(resolve(str(spec["url"])), http_client=client)
            )
        else:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            cwd = grant.folder / str(spec.get("cwd", ".")) if not grant.confined else grant.folder
            parameters = StdioServerParameters(
                command=str(spec["command"]),
                args=[str(a) for a in spec.get("args") or []],
                env={k: resolve(str(v)) for k, v in (spec.get("env") or {}).items()},
                cwd=str(cwd),
            )
            streams = await stack.enter_async_context(stdio_client(parameters, errlog=errlog))
        session = await stack.enter_async_context(ClientSession(streams[0], streams[1]))
        await session.initialize()
        listed: list[Any] = []
        cursor = None
        while True:
            page = await session.list_tools(
                params=types.PaginatedRequestParams(cursor=cursor) if cursor else None
            )
            listed.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        self.listed = [{"name": t.name, "description": t.description,
                        "input_schema": dict(t.input_schema or {})} for t in listed]  # fmt: skip
        if self.on_listed is not None:
            self.on_listed(self.listed)
        return session

    async def aclose(self) -> None:
        if self._task is None or self._stop is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 10)
        except (TimeoutError, Exception):
            self._task.cancel()


class McpTool:
    def __init__(
        self, server: McpServer, name: str, spec: ToolSpec, timeout_s: float | None
    ) -> None:
        self.server = server
        self.remote_name = name
        self.spec = spec
        self.timeout_s = timeout_s

    async def call(self, arguments: dict[str, Any]) -> Any:
        try:
            session = await self.server.session()
        except RunError as exc:
            raise ToolFailed(exc.message) from None
        try:
            result = await session.call_tool(
                self.remote_name, arguments, read_timeout_seconds=self.timeout_s
            )
        except Exception as exc:  # the connection closed, the server died, a protocol error
            raise ToolFailed(
                f"MCP server {self.server.resource} did not answer: {_describe(exc)}"
            ) from None
        text = _content_text(result)
        if result.is_error:
            raise ToolFailed(text or f"{self.remote_name} failed")
        return text


class McpPool:
    """The MCP servers of an event loop, and the tool lists the workspace remembers.

    `offline`: never start anything (an offline replay); a server whose tools the workspace
    does not remember gets them from `recorded` (the tools the recorded run offered).
    """

    def __init__(
        self,
        workspace: Path | None,
        *,
        offline: bool = False,
        recorded: list[ToolSpec] | None = None,
    ) -> None:
        self.workspace = workspace
        self.offline = offline
        self.recorded = list(recorded or [])
        self._servers: dict[str, McpServer] = {}
        self._remembered: dict[str, Any] | None = None

    # -- the workspace's memory of tool lists -----------------------------------------------

    def _file(self) -> Path | None:
        return None if self.workspace is None else self.workspace / LISTINGS

    def _memory(self) -> dict[str, Any]:
        if self._remembered is None:
            file = self._file()
            try:
                data = json.loads(file.read_text("utf-8")) if file is not None else {}
            except (OSError, ValueError):
                data = {}
            self._remembered = data if isinstance(data, dict) else {}
        return self._remembered

    def _remember(self, key: str, resource: str, listed: list[dict[str, Any]]) -> None:
        memory = self._memory()
        if (memory.get(key) or {}).get("tools") == listed:
            return
        memory[key] = {"resource": resource, "tools": listed}
        file = self._file()
        if file is not None and file.parent.is_dir():
            from afctl.files import write_atomically

            try:
                write_atomically(file, json.dumps(memory, indent=1, sort_keys=True) + "\n")
            except OSError:
                pass  # remembering is an optimisation

    # -- tools ----------------------------------------------------------------------------

    async def tools(
        self,
        resource: str,
        spec: dict[str, Any],
        environment: ToolContext,
        taken: frozenset[str] = frozenset(),
    ) -> list[McpTool]:
        """The tools of the MCP Tool `resource` its agent may use, without starting its
        server when the list is known (`taken`: the names of the agent's other tools).

        Raises:
            RunError: the server had to start to list its tools and did not, or an
                allow-listed tool is missing from it.
            CapabilityDenied: its grant does not allow the server.
        """
        grant = environment.allowed  # checked before anything starts or connects
        grant.references(spec)
        if spec.get("transport") == "http" or (spec.get("url") and not spec.get("command")):
            grant.url(environment.secrets.resolve(str(spec.get("url"))))
        else:
            grant.command(str(spec.get("command")))
        for name in _env_names(spec):  # this run redacts the server's secrets too
            environment.secrets.env(name)
        key = identity(spec)
        server = self._servers.get(key)
        if server is None:
            server = self._servers[key] = McpServer(
                resource, spec, environment,
                lambda listed: self._remember(key, resource, listed),
            )  # fmt: skip
        listed = self._listing(key, resource, spec, taken)
        if listed is None:
            await server.session()  # the first time: start it to learn its tools
            listed = server.listed or []
        prefix = str(spec.get("prefix") or "")
        wanted = spec.get("tools")
        by_name = {str(t["name"]): t for t in listed}
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
                server,
                str(tool["name"]),
                ToolSpec(
                    prefix + str(tool["name"]),
                    tool.get("description") or f"{tool['name']} (from MCP server {resource})",
                    dict(tool.get("input_schema") or {"type": "object", "properties": {}}),
                ),
                None if timeout is None else float(timeout),
            )
            for tool in listed
            if not wanted or tool["name"] in wanted
        ]

    def _listing(
        self, key: str, resource: str, spec: dict[str, Any], taken: frozenset[str]
    ) -> list[dict[str, Any]] | None:
        """The server's tools as last listed (by this loop, the workspace, or, offline, the
        recording); None when only starting it can tell."""
        server = self._servers.get(key)
        if server is not None and server.listed is not None:
            return server.listed
        remembered = (self._memory().get(key) or {}).get("tools")
        if isinstance(remembered, list):
            return remembered
        if not self.offline:
            return None
        prefix = str(spec.get("prefix") or "")
        wanted = spec.get("tools")
        return [
            {"name": t.name[len(prefix):], "description": t.description,
             "input_schema": t.parameters}
            for t in self.recorded
            if t.name.startswith(prefix) and t.name not in taken
            and (not wanted or t.name[len(prefix):] in wanted)
        ]  # fmt: skip

    async def aclose(self) -> None:
        """Stop every server this pool started."""
        servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            await server.aclose()

"""The clients a context's runs share for its lifetime: SDK clients of the providers
(`ProviderPool`) and MCP server connections (`McpPool`).

Both belong to the event loop they were made on (an SDK's HTTP connections, an MCP server's
session). A context's calls run on one loop for its life (`afctl.sync.ContextLoop` for the
sync façade, the caller's for the async one), so the clients are made on its first run and
closed when the context closes. Should a call come on another loop, the clients are made
anew for it (the old ones cannot be used, or closed, from there).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from afctl.providers.pool import ProviderPool
from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.tools.mcp_tool import McpPool


class SharedClients:
    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        """Read when an MCP pool is made: asking for its folder earlier would pick one (the
        current directory's) before anything needs it."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._providers: ProviderPool | None = None
        self._mcp: McpPool | None = None

    def _follow_loop(self) -> None:
        """Forget clients of another loop than the running one (they are made afresh)."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._loop, self._providers, self._mcp = loop, None, None

    @property
    def providers(self) -> ProviderPool:
        """The SDK clients of this loop (call inside a coroutine)."""
        self._follow_loop()
        if self._providers is None:
            self._providers = ProviderPool()
        return self._providers

    @property
    def mcp(self) -> McpPool:
        """The MCP connections of this loop (call inside a coroutine)."""
        from afctl.tools.mcp_tool import McpPool

        self._follow_loop()
        if self._mcp is None:
            self._mcp = McpPool(self.workspace.dir)
        return self._mcp

    def providers_if_made(self) -> ProviderPool | None:
        """The SDK clients made so far, without making any (for tests and diagnostics)."""
        return self._providers

    async def aclose(self) -> None:
        """Stop the MCP servers and close the SDK clients (on the loop they belong to)."""
        mcp, providers = self._mcp, self._providers
        self._mcp = self._providers = None
        if asyncio.get_running_loop() is not self._loop:
            return  # another loop's: nothing can be awaited from here
        try:
            if mcp is not None:
                await mcp.aclose()
        finally:
            if providers is not None:
                await providers.aclose()

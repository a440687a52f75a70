"""The MCP servers a run reaches: the ones shared by the runs of an event loop (the
environment's pool), or, without a shared pool, the run's own, started on first use and
stopped when the run ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from afctl.runtime.environment import RunEnvironment

if TYPE_CHECKING:
    from afctl.tools.mcp_tool import McpPool


class McpConnections:
    def __init__(self, environment: RunEnvironment) -> None:
        self.environment = environment
        self._own = environment.mcp is None
        self._pool: McpPool | None = environment.mcp

    async def tools(self, resource: str, spec: dict[str, Any], taken: frozenset[str]) -> list[Any]:
        """The tools of MCP Tool `resource` (its server started on the first call of one)."""
        from afctl.tools.mcp_tool import McpPool

        if self._pool is None:
            self._pool = McpPool(self.environment.workspace_dir)
        document = self.environment.catalog.get("Tool", resource)
        return await self._pool.tools(resource, spec, self.environment.scoped(document), taken)

    async def aclose(self) -> None:
        """Stop the servers this run started (a shared pool outlives the run)."""
        if self._own and self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.aclose()

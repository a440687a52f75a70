"""`afctl mcp serve`: the applied agents and workflows as MCP tools over stdio."""

from __future__ import annotations

import click

from afctl.cli.params import env_option, workspace_option
from afctl.errors import EXIT_OK


@click.group()
def mcp() -> None:
    """Offer the applied agents and workflows to MCP clients."""


@mcp.command("serve")
@workspace_option
@env_option
def serve(workspace: str | None, env: str | None) -> int:
    """Serve the applied agents and workflows as MCP tools over stdio.

    For local MCP clients (IDEs, desktop apps) that start afctl themselves: each agent is a
    tool agent_NAME taking {"input": "..."}, each workflow a tool workflow_NAME taking its
    inputs. Runs are recorded in the prompt log like any other. afctl serve offers the same
    at /mcp over HTTP, with keys and roles.
    """
    import asyncio

    from afctl.server.mcp_app import serve_stdio

    asyncio.run(serve_stdio(workspace, env))
    return EXIT_OK

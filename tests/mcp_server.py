"""A small MCP server for afctl's tests, written with the official SDK's server API.

`python tests/mcp_server.py` serves over stdio; `python tests/mcp_server.py http PORT` serves
streamable HTTP on 127.0.0.1:PORT/mcp. With MCP_PID_FILE set it writes its pid there, so tests
can check that afctl stopped it; with MCP_START_LOG set it appends a line there each time it
starts, so tests can count starts.
"""

from __future__ import annotations

import os
import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("afctl-test-tools")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


@server.tool()
def fail(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"failed: {reason}")


@server.tool()
def die() -> str:
    """Stops the server without answering."""
    os._exit(3)


@server.tool()
def token() -> str:
    """The token the server was started with."""
    return os.environ.get("MCP_TOKEN", "none")


if __name__ == "__main__":
    if os.environ.get("MCP_PID_FILE"):
        with open(os.environ["MCP_PID_FILE"], "w") as pid_file:
            pid_file.write(str(os.getpid()))
    if os.environ.get("MCP_START_LOG"):  # one line per start, for tests that count them
        with open(os.environ["MCP_START_LOG"], "a") as starts:
            starts.write(f"{os.getpid()}\n")
    if sys.argv[1:2] == ["http"]:
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run("stdio")

"""Tools an agent can call: python functions, sandboxed built-ins, and (later) http, mcp, agents."""

from afctl.tools.decorator import tool

__all__ = ["tool"]

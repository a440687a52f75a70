"""From an agent's tool names to callable tools; afctl's own tool types register like plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from afctl.errors import RunError
from afctl.plugins import hookimpl
from afctl.safety.paths import PathRefused
from afctl.tools.builtin import DEFAULT_MAX_BYTES, BuiltinFileTool

if TYPE_CHECKING:
    from afctl.tool_context import ToolContext
    from afctl.tools.base import Tool, ToolFactory

BUILTIN_PREFIX = "builtin/"


def _python(name: str, spec: dict[str, Any], environment: ToolContext) -> Tool:
    from afctl.tools.python_tool import PythonTool, import_entrypoint

    try:
        root = environment.allowed.python(str(spec["entrypoint"]), spec.get("root"))
    except PathRefused as exc:
        raise RunError(f"tool {name}: root {spec.get('root')!r}: {exc.message}") from None
    function = import_entrypoint(str(spec["entrypoint"]), root)
    return PythonTool(
        name, function, spec.get("description"), spec.get("parameters"), spec.get("timeout_s")
    )


def _builtin(name: str, spec: dict[str, Any], environment: ToolContext) -> Tool:
    builtin = str(spec["builtin"])
    return BuiltinFileTool(
        name,
        builtin,
        environment.allowed.file_root(spec.get("root"), reading=builtin != "write_file"),
        description=spec.get("description"),
        max_bytes=int(spec.get("max_bytes", DEFAULT_MAX_BYTES)),
        timeout_s=spec.get("timeout_s"),
    )


def _agent(name: str, spec: dict[str, Any], environment: ToolContext) -> Tool:
    from afctl.tools.agent_tool import AgentTool

    environment.catalog.get("Agent", str(spec["agent"]))  # fails clearly when it is missing
    return AgentTool(
        name, str(spec["agent"]), spec.get("description"), spec.get("input"), spec.get("timeout_s")
    )


def _http(name: str, spec: dict[str, Any], environment: ToolContext) -> Tool:
    from afctl.tools.http_tool import build

    return build(name, spec, environment)


@hookimpl
def register_tools() -> dict[str, ToolFactory]:
    return {"python": _python, "builtin": _builtin, "agent": _agent, "http": _http}


_OWN_TYPES = frozenset({"python", "builtin", "agent", "http", "mcp"})
"""Tool types afctl itself implements; any other comes from a plugin."""
_STATELESS = frozenset({"python", "builtin", "agent"})
"""Tool types whose built tools hold nothing of the run that built them (an http tool holds the
run's secrets, which must redact that run's log), so one can serve every run."""


_built: dict[str, Tool] = {}
"""Tools built in this process, by (name, spec, root): they are stateless, and building one
(importing, inferring its schema) costs more than a whole run against a fast model."""


def build_tools(
    names: list[str], environment: ToolContext, owner: dict[str, Any] | None = None
) -> list[Tool]:
    """The tools of an agent (or a workflow step), ready to call, once their grants allow
    them: a tool installed from a blueprint gets only what the blueprint may do; `builtin/...`
    tools work in the folder of their `owner` (the agent or workflow that lists them).

    Raises:
        RunError: a tool is not available, its type cannot run in this afctl, or its grant
            does not allow it (CapabilityDenied).
    """
    import json

    from afctl.plugins import tool_types

    tools: list[Tool] = []
    for name in names:
        if name.startswith(BUILTIN_PREFIX):
            builtin = name[len(BUILTIN_PREFIX) :]
            grant = environment.grant(owner or {})
            root = grant.file_root(None, reading=builtin != "write_file")
            tools.append(BuiltinFileTool(builtin, builtin, root))
            continue
        document = environment.catalog.get("Tool", name)
        spec = document.get("spec") or {}
        kind = str(spec.get("type"))
        if kind == "mcp":
            raise RunError(f"tool {name}: MCP tools are connected by the agent loop")
        grant = environment.grant(document)
        grant.references(document)
        if kind == "python":
            grant.python(str(spec.get("entrypoint")), spec.get("root"))  # before any import
        if kind not in _OWN_TYPES:
            grant.plugin(kind)
        key = json.dumps([name, spec, str(grant.folder), grant.allowed.to_dict()],
                         sort_keys=True, default=str)  # fmt: skip
        built = _built.get(key) if kind in _STATELESS else None
        if built is None:
            factories = tool_types()
            factory = factories.get(kind)
            if factory is None:
                raise RunError(
                    f"tool {name}: tools of type {kind!r} cannot run in this version of afctl",
                    hint="available tool types: " + ", ".join(sorted(factories)),
                )
            built = factory(name, spec, environment.scoped(document))
            if kind in _STATELESS:
                _built[key] = built
        tools.append(built)
    return tools

"""From an agent's tool names to callable tools; afctl's own tool types register like plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from afctl.errors import RunError
from afctl.plugins import ToolFactory, hookimpl
from afctl.tools.builtin import DEFAULT_MAX_BYTES, BuiltinFileTool

if TYPE_CHECKING:
    from afctl.runtime.environment import RunEnvironment
    from afctl.tools.base import Tool

BUILTIN_PREFIX = "builtin/"


def _check_trusted(name: str, document: dict[str, Any], environment: RunEnvironment) -> None:
    """Python tools that came with a blueprint run only once the blueprint is trusted.

    Raises:
        RunError: it is not.
    """
    labels = (document.get("metadata") or {}).get("labels") or {}
    blueprint = labels.get("afctl/blueprint")
    if blueprint is None:
        return
    from afctl.blueprints.store import BlueprintStore

    if not BlueprintStore(environment.workspace_dir).trusted(str(blueprint)):
        raise RunError(
            f"tool {name}: the python tools of blueprint {blueprint} are not trusted",
            hint=f"read its tools/ first, then: afctl blueprint trust {blueprint}",
        )


def _python(name: str, spec: dict[str, Any], environment: RunEnvironment) -> Tool:
    from afctl.safety.paths import PathRefused, inside
    from afctl.tools.python_tool import PythonTool, import_entrypoint

    try:
        root = (
            inside(environment.root, str(spec.get("root", ".")))
            if spec.get("root")
            else environment.root
        )
    except PathRefused as exc:
        raise RunError(f"tool {name}: root {spec.get('root')!r}: {exc}") from None
    function = import_entrypoint(str(spec["entrypoint"]), root)
    return PythonTool(
        name, function, spec.get("description"), spec.get("parameters"), spec.get("timeout_s")
    )


def _builtin(name: str, spec: dict[str, Any], environment: RunEnvironment) -> Tool:
    return BuiltinFileTool(
        name,
        str(spec["builtin"]),
        environment.root / str(spec.get("root", ".")),
        description=spec.get("description"),
        max_bytes=int(spec.get("max_bytes", DEFAULT_MAX_BYTES)),
        timeout_s=spec.get("timeout_s"),
    )


def _agent(name: str, spec: dict[str, Any], environment: RunEnvironment) -> Tool:
    from afctl.tools.agent_tool import AgentTool

    environment.catalog.get("Agent", str(spec["agent"]))  # fails clearly when it is missing
    return AgentTool(
        name, str(spec["agent"]), spec.get("description"), spec.get("input"), spec.get("timeout_s")
    )


def _http(name: str, spec: dict[str, Any], environment: RunEnvironment) -> Tool:
    from afctl.tools.http_tool import build

    return build(name, spec, environment)


@hookimpl
def register_tools() -> dict[str, ToolFactory]:
    return {"python": _python, "builtin": _builtin, "agent": _agent, "http": _http}


_STATELESS = frozenset({"python", "builtin", "agent"})
"""Tool types whose built tools hold nothing of the run that built them (an http tool holds the
run's secrets, which must redact that run's log), so one can serve every run."""


_built: dict[str, Tool] = {}
"""Tools built in this process, by (name, spec, root): they are stateless, and building one
(importing, inferring its schema) costs more than a whole run against a fast model."""


def build_tools(names: list[str], environment: RunEnvironment) -> list[Tool]:
    """The agent's tools, ready to call.

    Raises:
        RunError: a tool is not available, or its type cannot run in this afctl.
    """
    import json

    from afctl.plugins import tool_types

    tools: list[Tool] = []
    for name in names:
        if name.startswith(BUILTIN_PREFIX):
            builtin = name[len(BUILTIN_PREFIX) :]
            tools.append(BuiltinFileTool(builtin, builtin, environment.root))
            continue
        document = environment.catalog.get("Tool", name)
        spec = document.get("spec") or {}
        kind = str(spec.get("type"))
        if kind == "python":
            _check_trusted(name, document, environment)
        key = json.dumps([name, spec, str(environment.root)], sort_keys=True, default=str)
        built = _built.get(key) if kind in _STATELESS else None
        if built is None:
            factories = tool_types()
            factory = factories.get(kind)
            if kind == "mcp":
                raise RunError(f"tool {name}: MCP tools are connected by the agent loop")
            if factory is None:
                raise RunError(
                    f"tool {name}: tools of type {kind!r} cannot run in this version of afctl",
                    hint="available tool types: " + ", ".join(sorted(factories)),
                )
            built = factory(name, spec, environment)
            if kind in _STATELESS:
                _built[key] = built
        tools.append(built)
    return tools

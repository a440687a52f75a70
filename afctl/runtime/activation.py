"""Who answers: everything an agent needs to take a turn (its models, tools, handoffs,
validators, approvals and rendered instructions), and the revision of resources a run of it
records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afctl.errors import RunError
from afctl.hashing import content_hash
from afctl.providers.models import ModelConfig
from afctl.providers.types import Message
from afctl.runtime.environment import RunEnvironment

if TYPE_CHECKING:
    from afctl.runtime.mcp_connections import McpConnections
    from afctl.safety.secrets import Secrets


@dataclass
class Active:
    """The agent answering now: the one started, or the last one handed off to."""

    name: str
    spec: dict[str, Any]
    chain: list[ModelConfig]
    tools: list[Any]
    by_name: dict[str, Any]
    validators: dict[str, Any]
    handoffs: dict[str, str]
    """Handoff tool name -> target agent."""
    system: Message | None
    output_validator: Any
    approvals: dict[str, Any] = field(default_factory=dict)
    """Tool name -> its `approval` rule (`always`, or `{when: ...}`)."""

    @property
    def guarded(self) -> bool:
        """Whether the agent's answers pass output guardrails (so are not streamed)."""
        return bool((self.spec.get("guardrails") or {}).get("output"))


def render_instructions(template: str, variables: dict[str, Any], secrets: Secrets) -> str:
    """The system prompt, from the agent's jinja2 template over `vars` (the template's own
    `${env:...}` references resolved; none that a variable's value brings).

    Raises:
        RunError: the template uses a variable that has no value.
    """
    from jinja2 import TemplateError, UndefinedError

    from afctl.safety.templates import TemplateFailure

    try:
        return secrets.render(template, {"vars": variables})
    except UndefinedError as exc:
        raise RunError(
            f"the instructions use an undefined value: {exc.message}",
            hint="give it with --var NAME=VALUE or under spec.vars",
        ) from None
    except (TemplateError, TemplateFailure) as exc:
        raise RunError(f"cannot render the instructions: {exc}") from None


def agent_variables(
    spec: dict[str, Any], given: dict[str, Any], environment: RunEnvironment
) -> dict[str, Any]:
    """An agent's `vars` (their `${env:...}` references resolved: the manifest wrote them)
    with the run's values over them (taken as text: a value never reaches a secret)."""
    resolve = environment.secrets.resolve
    written = {k: resolve(v) if isinstance(v, str) else v
               for k, v in (spec.get("vars") or {}).items()}  # fmt: skip
    return {**written, **given}


def resource_bundle(name: str, environment: RunEnvironment) -> dict[str, Any]:
    """The agent with every resource it may use (tools, models, the agents it hands off to or
    calls as tools, and theirs): the exact revision a run records."""
    catalog = environment.catalog
    bundle: dict[str, Any] = {"Agent": {}, "Tool": {}, "Model": {}, "KnowledgePack": {}}
    agents = [name]
    models_of_packs: list[str] = []
    while agents:
        current = agents.pop()
        if current in bundle["Agent"]:
            continue
        agent = catalog.get("Agent", current) if current == name else catalog.find("Agent", current)
        if agent is None:
            continue
        bundle["Agent"][current] = agent
        spec = agent.get("spec") or {}
        agents.extend(str(target) for target in spec.get("handoffs") or [])
        for pack in spec.get("knowledge") or []:
            document = catalog.find("KnowledgePack", str(pack))
            if document is not None:
                bundle["KnowledgePack"][str(pack)] = document
                embedding = ((document.get("spec") or {}).get("index") or {}).get("embedding_model")
                if embedding:
                    models_of_packs.append(str(embedding))
        for tool in spec.get("tools") or []:
            document = catalog.find("Tool", tool)
            if document is not None:
                bundle["Tool"][tool] = document
                if (document.get("spec") or {}).get("type") == "agent":
                    agents.append(str(document["spec"].get("agent")))
        models = [str(spec.get("model", "")), *models_of_packs]
        while models:
            model = models.pop()
            if "/" in model or model in bundle["Model"]:
                continue
            document = catalog.find("Model", model)
            if document is not None:
                bundle["Model"][model] = document
                models.extend(str(f) for f in (document.get("spec") or {}).get("fallback") or [])
    return bundle


def agent_revision(name: str, environment: RunEnvironment) -> tuple[dict[str, Any], str]:
    """The bundle of agent `name` and its content hash (computed once per catalog)."""

    def compute() -> tuple[dict[str, Any], str]:
        bundle = resource_bundle(name, environment)
        return bundle, content_hash(bundle)

    result: tuple[dict[str, Any], str] = environment.catalog.derived(("revision", name), compute)
    return result


async def activate(
    name: str,
    environment: RunEnvironment,
    variables: dict[str, Any],
    mcp: McpConnections,
    model_ref: str | None = None,
) -> Active:
    """Everything needed to let agent `name` answer (with `model_ref` instead of its model).

    Raises:
        RunError: two of its tools have one name, or its instructions cannot be rendered.
        CapabilityDenied: its grant does not allow what it uses.
    """
    from afctl.tools.base import Validator

    catalog = environment.catalog
    document = catalog.get("Agent", name)
    environment.grant(document).references(document)
    spec = document.get("spec") or {}
    chain = [environment.model(model_ref or str(spec.get("model")))]
    chain.extend(environment.model(fallback) for fallback in chain[0].fallback)
    tools, approvals = await _tools_of(document, environment, mcp)
    handoffs: dict[str, str] = {}
    if spec.get("handoffs"):
        from afctl.tools.agent_tool import HandoffTool

        for target in spec.get("handoffs") or []:
            described = (catalog.get("Agent", str(target)).get("metadata") or {}).get("description")
            tool = HandoffTool(str(target), described)
            handoffs[tool.spec.name] = str(target)
            tools.append(tool)
    by_name = {tool.spec.name: tool for tool in tools}
    if len(by_name) != len(tools):
        raise RunError(
            f"two of agent {name}'s tools have the same name",
            hint="give an MCP Tool a prefix to keep its tools' names apart",
        )
    system = None
    instructions = spec.get("instructions")
    if instructions:
        given = agent_variables(spec, variables, environment)
        system = Message("system", render_instructions(str(instructions), given,
                                                       environment.secrets))  # fmt: skip
    output_schema = spec.get("output_schema")
    return Active(
        name,
        spec,
        chain,
        tools,
        by_name,
        {tool_name: Validator(tool.spec.parameters) for tool_name, tool in by_name.items()},
        handoffs,
        system,
        Validator(output_schema) if isinstance(output_schema, dict) else None,
        approvals,
    )


async def _tools_of(
    document: dict[str, Any], environment: RunEnvironment, mcp: McpConnections
) -> tuple[list[Any], dict[str, Any]]:
    """An agent's tools (its Tools', its MCP servers' and its knowledge packs'), and the
    approval rules of those that need a person's approval."""
    from afctl.tools.registry import build_tools

    catalog = environment.catalog
    spec = document.get("spec") or {}
    tools: list[Any] = []
    approvals: dict[str, Any] = {}
    listed = [str(r) for r in spec.get("tools") or []]
    specs = {r: (catalog.find("Tool", r) or {}).get("spec") or {} for r in listed}
    built = {r: build_tools([r], environment, owner=document)
             for r in listed if specs[r].get("type") != "mcp"}  # fmt: skip
    taken = frozenset(t.spec.name for made in built.values() for t in made)
    for resource in listed:
        tool_spec = specs[resource]
        if tool_spec.get("type") == "mcp":
            made = await mcp.tools(resource, tool_spec, taken)
        else:
            made = built[resource]
        tools.extend(made)
        rule = tool_spec.get("approval", "never")
        if rule != "never":
            approvals.update((tool.spec.name, rule) for tool in made)
    if spec.get("knowledge"):
        from afctl.tools.knowledge_tool import KnowledgeTool

        for pack in spec.get("knowledge") or []:
            pack_document = catalog.get("KnowledgePack", str(pack))
            tools.append(KnowledgeTool(str(pack), pack_document, environment))
    return tools, approvals

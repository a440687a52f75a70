"""Agents as tools (`type: agent`) and handoffs (`spec.handoffs`): tools whose call the agent
loop carries out itself, because running another agent needs the run (its log, budget and
parent id), not just the arguments."""

from __future__ import annotations

from typing import Any

from afctl.errors import RunError
from afctl.providers.types import ToolSpec

HANDOFF_PREFIX = "transfer_to_"
DEFAULT_INPUT = "{{ args.input }}"
_INPUT_PARAMETERS = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "What to ask the agent."}},
    "required": ["input"],
}


class AgentTool:
    """Calls `agent` with the rendered `input` template; its output is the tool's result."""

    def __init__(
        self,
        name: str,
        agent: str,
        description: str | None,
        input_template: str | None,
        timeout_s: float | None,
    ) -> None:
        self.agent = agent
        self.input_template = input_template or DEFAULT_INPUT
        self.spec = ToolSpec(name, description or f"Ask the {agent} agent.", _INPUT_PARAMETERS)
        self.timeout_s = timeout_s

    def render_input(self, arguments: dict[str, Any]) -> str:
        """The agent's input for these arguments.

        Raises:
            RunError: the template uses a value the arguments do not have.
        """
        from jinja2 import TemplateError

        from afctl.safety.templates import TemplateFailure, render

        try:
            return render(self.input_template, {"args": arguments})
        except (TemplateError, TemplateFailure) as exc:
            raise RunError(f"cannot render the input for agent {self.agent}: {exc}") from None

    async def call(self, arguments: dict[str, Any]) -> Any:
        raise RunError(f"agent tools are run by the agent loop ({self.spec.name})")


class HandoffTool:
    """`transfer_to_<agent>`: the conversation continues with `target`."""

    def __init__(self, target: str, description: str | None) -> None:
        self.target = target
        about = f": {description}" if description else ""
        self.spec = ToolSpec(
            HANDOFF_PREFIX + target,
            f"Hand the conversation over to the {target} agent{about}",
            {"type": "object", "properties": {}},
        )
        self.timeout_s: float | None = None

    async def call(self, arguments: dict[str, Any]) -> Any:
        raise RunError(f"handoffs are carried out by the agent loop ({self.spec.name})")

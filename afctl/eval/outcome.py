"""What assertions look at (a case's `Outcome`) and what they give (`Checked`), with the
helpers every check shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Outcome:
    """What a case produced, as assertions see it."""

    output: str
    status: str
    latency_ms: float
    cost_usd: float | None
    tokens: int | None
    """None when the provider did not report usage."""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    handoffs: list[str] = field(default_factory=list)
    blocked_by: list[str] = field(default_factory=list)
    """Names of the guardrails that blocked."""
    vars: dict[str, Any] = field(default_factory=dict)
    answered: bool = True
    """False when the run gave no answer at all (output is then "")."""

    @classmethod
    def of_run(cls, result: Any, events: list[Any], variables: dict[str, Any]) -> Outcome:
        """What assertions see of a run: its result, and the tool calls, handoffs and
        guardrail blocks among its events."""
        return cls(
            result.output or "",
            result.status,
            result.latency_ms,
            result.cost_usd,
            result.usage.total if result.usage.known else None,
            [(e.payload.get("name", ""), e.payload.get("arguments") or {})
             for e in events if e.type == "tool_call"],
            [str(e.payload.get("to")) for e in events if e.type == "handoff"],
            [str(d.get("name")) for e in events if e.type == "guardrail"
             for d in e.payload.get("decisions", [])
             if d.get("tripped") and d.get("action") == "block"],
            dict(variables),
            result.output is not None,
        )  # fmt: skip


@dataclass(frozen=True)
class Checked:
    name: str
    type: str
    passed: bool
    weight: float
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def verdict_of(verdict: Any, otherwise: str) -> tuple[bool, str | None]:
    """A check function's answer: a bool, or (bool, reason)."""
    if isinstance(verdict, tuple):
        return bool(verdict[0]), str(verdict[1]) if len(verdict) > 1 else otherwise
    return bool(verdict), otherwise


def render_value(text: str, outcome: Outcome) -> str:
    """An assertion's value rendered over the case's variables.

    Raises:
        ValueError: it cannot be rendered (the assertion fails, saying why).
    """
    from jinja2 import TemplateError

    from afctl.safety.templates import render

    try:
        return render(text, {"vars": outcome.vars})
    except TemplateError as exc:
        raise ValueError(f"cannot render {text!r}: {exc}") from None

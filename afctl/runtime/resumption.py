"""Where an agent run stopped, read back from its events, so it can go on as the same run.

A run's model calls are recorded once answered, each with the whole conversation the model
was sent and its answer; its tool calls are recorded once they return. So the point a run
goes on from is its last recorded model answer, with:

- the results of that answer's tool calls that were recorded (those calls are not made again;
  a call that was still in flight when the run stopped is made again),
- the approvals decided for them, and a handoff if the answer's calls were all done,
- for a final answer: whether the output guardrails blocked it or it failed the
  output_schema (then the repair is asked for, or the run fails, as it would have).

A run stopped before its first answer was recorded starts its conversation again from its
input. What the log keeps is redacted, so a resumed conversation holds the redacted text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afctl.providers.types import Message, Usage
from afctl.runtime.run_types import Spend

if TYPE_CHECKING:
    from afctl.promptlog.store import EventRecord, PromptLog, RunRecord
    from afctl.runtime.run_types import RunResult


@dataclass
class Resumption:
    agent: str
    """The agent that gave the last answer."""
    turn: int
    messages: list[Message]
    """The conversation as the model was last sent it, and its answer (the last message)."""
    own_from: int
    """Where this run's own messages start in `messages` (its input; before: the
    instructions and a session's history)."""
    results: dict[str, Message] = field(default_factory=dict)
    """Recorded results of the answer's tool calls, by call id."""
    decided: dict[str, bool] = field(default_factory=dict)
    """Approvals of the answer's tool calls, by call id."""
    recorded: set[str] = field(default_factory=set)
    """The calls in `decided` whose approval is in the log already."""
    handoff: str | None = None
    """The agent the answer's calls handed off to (recorded once they were all done)."""
    blocked: dict[str, Any] | None = None
    """The output guardrails' decision, when they blocked the (final) answer (recorded just
    after it)."""
    invalid: dict[str, Any] | None = None
    """The output_schema check's finding, when the (final) answer failed it."""
    repaired: bool = False
    """A repair of the output was asked for earlier in the run."""
    spend: Spend = field(default_factory=Spend)
    tool_calls: int = 0

    @property
    def answer(self) -> Message:
        return self.messages[-1]


def resumption(record: RunRecord, events: Sequence[EventRecord]) -> Resumption | None:
    """Where the run of `record` with these `events` stopped; None when no answer of its
    model was recorded."""
    calls = [e for e in events if e.type == "model_call"]
    if not calls:
        return None
    last = calls[-1]
    messages = [Message.from_dict(m) for m in last.payload["request"]["messages"]]
    messages.append(Message.from_dict(last.payload["response"]["message"]))
    first = calls[0].payload["request"]["messages"]
    own_input = Message.from_dict(first[-1]) if first else None
    own_from = max((i for i, m in enumerate(messages) if m == own_input), default=0)
    state = Resumption(str(last.payload.get("agent")), last.turn or len(calls), messages,
                       own_from, spend=_spend(record, calls),
                       tool_calls=sum(e.type == "tool_call" for e in events))  # fmt: skip
    state.repaired = any(e.type == "output_invalid" for e in events if e.seq < last.seq)
    for event in (e for e in events if e.seq > last.seq):
        payload = event.payload
        if event.type == "tool_call":
            error = payload.get("error")
            state.results[str(payload["id"])] = Message(
                "tool", str(payload.get("result") or ""), tool_call_id=str(payload["id"]),
                name=str(payload.get("name")), is_error=error is not None,
            )  # fmt: skip
        elif event.type == "approval":
            state.decided[str(payload["id"])] = bool(payload.get("approved"))
            state.recorded.add(str(payload["id"]))
        elif event.type == "handoff":
            state.handoff = str(payload["to"])
        elif event.type == "output_invalid":
            state.invalid = payload
        elif event.type == "guardrail" and event.status == "blocked":
            state.blocked = payload
    return state


def blocked_reason(guardrail: dict[str, Any]) -> str:
    """Why a recorded guardrail decision blocked (its first tripped blocking check)."""
    for decision in guardrail.get("decisions") or []:
        if decision.get("tripped") and decision.get("action") == "block":
            reason = decision.get("reason")
            return f"blocked by guardrail {decision.get('name')}" + (
                f": {reason}" if reason else ""
            )
    return "blocked by a guardrail"


def _spend(record: RunRecord, calls: list[EventRecord]) -> Spend:
    """The run's tokens and cost so far: the totals a paused run recorded (they count its
    judges' calls too), else its model calls'."""
    if record.status == "awaiting_approval" and record.input_tokens is not None:
        usage = Usage(record.input_tokens, record.output_tokens or 0)
        return Spend(usage, record.cost_usd)
    usage = Usage()
    cost: float | None = 0.0
    for call in calls:
        known = call.input_tokens is not None
        usage = usage.plus(Usage(call.input_tokens or 0, call.output_tokens or 0, known=known))
        cost = None if cost is None or call.cost_usd is None else cost + call.cost_usd
    return Spend(usage, cost)


def recorded_result(log: PromptLog, record: RunRecord) -> RunResult:
    """The result of a finished agent run, read back from the log (as `AgentRun.run` returned
    it, but the output as recorded: redacted)."""
    from afctl.runtime.run_types import RunResult

    usage = Usage(record.input_tokens or 0, record.output_tokens or 0,
                  known=record.input_tokens is not None)  # fmt: skip
    return RunResult(record.id, record.status, log.payload(record.id).get("output"), record.error,
                     record.error_type, usage, record.cost_usd, record.latency_ms or 0.0,
                     record.turns or 0, record.tool_calls or 0, record.model)  # fmt: skip

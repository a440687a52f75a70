"""A turn's tool calls: approvals first (a person, a recorded decision, or a pause), then the
calls themselves, concurrently, each validated against its tool's JSON Schema and bounded by
its timeout. A failure goes back to the model as the tool's result, never a crash."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Collection
from typing import Any

from afctl.errors import RunError
from afctl.providers.types import Message, ToolCall
from afctl.runtime.activation import Active
from afctl.runtime.recorder import RunJournal
from afctl.runtime.run_types import RunHooks, RunStopped, TurnBudget

DEFAULT_TOOL_TIMEOUT_S = 60.0
MAX_TOOL_RESULT_CHARS = 100_000

AskAgent = Callable[[Any, dict[str, Any], TurnBudget], Awaitable[str]]
"""Runs another agent as a tool (a child run): (the AgentTool, arguments, shared budget)."""


class ToolDispatch:
    """Carries out the tool calls of one run; counts them against `max_tool_calls`."""

    def __init__(self, journal: RunJournal, hooks: RunHooks, ask_agent: AskAgent) -> None:
        self.journal = journal
        self.hooks = hooks
        self.ask_agent = ask_agent
        self.count = 0

    async def run_calls(
        self,
        active: Active,
        calls: tuple[ToolCall, ...],
        limits: dict[str, Any],
        turn: int,
        budget: TurnBudget,
        decided: dict[str, bool] | None = None,
        recorded: Collection[str] = (),
    ) -> tuple[list[Message], str | None]:
        """Run a turn's tool calls (concurrently); returns their results in the order of the
        calls, and the agent to hand off to, if the model asked for one. Calls that need a
        person's approval and are not `decided` (by call id; those in `recorded` are logged
        already) are asked for first, or the run pauses (`awaiting_approval`)."""
        handoff = next((c for c in calls if c.name in active.handoffs), None)
        work = [c for c in calls if c.name not in active.handoffs]
        denied = await self._approve(active, calls, work, turn, decided or {}, recorded)
        work = [c for c in work if c.id not in denied]
        self.count += len(work)
        cap = limits.get("max_tool_calls")
        if cap is not None and self.count > int(cap):
            raise RunStopped("limit", f"limit: more than max_tool_calls={cap} tool calls")
        if len(work) == 1:
            done = [await self._call(work[0], active, turn, budget)]
        else:
            done = list(await asyncio.gather(*(self._call(c, active, turn, budget) for c in work)))
        by_id = {id(call): result for call, result in zip(work, done, strict=True)}
        results = []
        for call in calls:
            if id(call) in by_id:
                results.append(by_id[id(call)])
            elif call.id in denied:
                text = "error: a person denied this call; do not try it again"
                results.append(
                    Message("tool", text, tool_call_id=call.id, name=call.name, is_error=True)
                )
            elif call is handoff:
                text = f"Transferred to {active.handoffs[call.name]}."
                results.append(Message("tool", text, tool_call_id=call.id, name=call.name))
            else:
                text = "error: only one handoff per turn; this one was not made"
                results.append(
                    Message("tool", text, tool_call_id=call.id, name=call.name, is_error=True)
                )
        return results, active.handoffs[handoff.name] if handoff is not None else None

    async def _approve(
        self,
        active: Active,
        calls: tuple[ToolCall, ...],
        work: list[ToolCall],
        turn: int,
        decided: dict[str, bool],
        recorded: Collection[str],
    ) -> set[str]:
        """The ids of the calls a person denied. Asks the approver for each call whose tool's
        `approval` rule requires it and that is not decided; without an approver, records the
        request and pauses the run."""
        needed = [call for call in work if _needs_approval(active.approvals.get(call.name), call)]
        if not needed:
            return set()
        approver = self.hooks.approver
        undecided = [call.id for call in needed if call.id not in decided]
        if undecided and approver is None:
            self.journal.event(
                "approval_requested",
                {"agent": active.name, "calls": [c.to_dict() for c in calls],
                 "pending": undecided},
                turn=turn,
                status="waiting",
            )  # fmt: skip
            names = ", ".join(sorted({c.name for c in needed if c.id in undecided}))
            raise RunStopped(
                "approval", f"waiting for a person to approve {names}", "awaiting_approval"
            )
        denied = set()
        for call in needed:
            if call.id in decided:
                approved, by = decided[call.id], "afctl approve"
            else:
                assert approver is not None
                approved, by = await approver(call.name, call.arguments), "prompt"
            if call.id not in recorded:
                self.journal.event(
                    "approval",
                    {"id": call.id, "name": call.name, "arguments": call.arguments,
                     "approved": approved, "by": by},
                    turn=turn,
                    tool=call.name,
                    status="approved" if approved else "denied",
                )  # fmt: skip
            if not approved:
                denied.add(call.id)
        return denied

    async def _call(self, call: ToolCall, active: Active, turn: int, budget: TurnBudget) -> Message:
        from afctl.tools.base import result_text
        from afctl.tools.knowledge_tool import Passages

        started = time.perf_counter()
        self.journal.announce(
            "tool_started",
            {"id": call.id, "name": call.name, "arguments": call.arguments, "turn": turn},
        )
        value, error = await self._outcome(call, active, turn, budget)
        if isinstance(value, Passages):
            self.journal.event(
                "retrieval",
                {"pack": value.pack, "query": value.query, "hits": value.hits},
                turn=turn,
                tool=call.name,
                status=f"{len(value.hits)} hits",
            )
        text = f"error: {error}" if error is not None else result_text(value)
        if len(text) > MAX_TOOL_RESULT_CHARS:
            text = text[:MAX_TOOL_RESULT_CHARS] + " …[truncated]"
        self.journal.event(
            "tool_call",
            {"id": call.id, "name": call.name, "arguments": call.arguments, "result": text,
             "error": error},
            turn=turn,
            tool=call.name,
            status="error" if error is not None else "ok",
            latency_ms=(time.perf_counter() - started) * 1000,
        )  # fmt: skip
        return Message(
            "tool", text, tool_call_id=call.id, name=call.name, is_error=error is not None
        )

    async def _outcome(
        self, call: ToolCall, active: Active, turn: int, budget: TurnBudget
    ) -> tuple[Any, str | None]:
        """(the tool's value, None), or (None, what went wrong) for the model to read."""
        from afctl.tools.agent_tool import AgentTool

        tool = active.by_name.get(call.name)
        if tool is None:
            return None, (f"there is no tool named {call.name!r}; tools: "
                          f"{', '.join(sorted(active.by_name))}")  # fmt: skip
        if call.raw_arguments and not _is_json_object(call.raw_arguments):
            return None, "the arguments are not a JSON object"
        problems = active.validators[call.name].problems(call.arguments)
        if problems:
            return None, "invalid arguments: " + "; ".join(problems)
        timeout = tool.timeout_s or DEFAULT_TOOL_TIMEOUT_S
        try:
            async with asyncio.timeout(timeout):
                if self.hooks.tool_runner is not None:
                    return await self.hooks.tool_runner(call, turn), None
                if isinstance(tool, AgentTool):
                    return await self.ask_agent(tool, dict(call.arguments), budget), None
                return await tool.call(dict(call.arguments)), None
        except TimeoutError:
            return None, f"the tool did not finish within {timeout:g} s"
        except RunError as exc:
            return None, exc.message
        except Exception as exc:  # the tool's own failure goes back to the model
            return None, f"{type(exc).__name__}: {exc}"


def _needs_approval(rule: Any, call: ToolCall) -> bool:
    if isinstance(rule, dict):
        from afctl.safety.expr import ExpressionError, truthy

        try:
            return bool(truthy(rule["when"], {"args": call.arguments}))
        except ExpressionError:  # a rule that cannot be decided asks a person
            return True
    return bool(rule == "always")


def _is_json_object(raw: str) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False

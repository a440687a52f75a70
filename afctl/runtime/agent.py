"""The agent loop: the turns of one run of one agent.

A run renders the agent's instructions, sends the conversation to its models (through the
stack of wrappers in `model_calls`: retry, concurrency gate, cache, fallback), hands the tool
calls the model asks for to `tool_dispatch`, and repeats until the model answers, a limit is
reached, or something fails. Guardrails run on the input before anything is recorded and on
each answer before it is shown. Everything that happens goes to a `Recorder` (the prompt log,
or memory) through the run's journal, redacted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from afctl.errors import RunError
from afctl.ids import new_ulid, utc_now
from afctl.providers.types import Message, ProviderError
from afctl.runtime.activation import (
    Active,
    activate,
    agent_revision,
    agent_variables,
)
from afctl.runtime.activation import render_instructions as render_instructions
from afctl.runtime.activation import resource_bundle as resource_bundle
from afctl.runtime.environment import RunEnvironment
from afctl.runtime.mcp_connections import McpConnections
from afctl.runtime.recorder import LogRecorder, MemoryRecorder, Recorder, RunJournal
from afctl.runtime.run_models import RunModels
from afctl.runtime.run_types import (
    DEFAULT_MAX_TURNS,
    DEFAULT_MEMORY_MESSAGES,
    Approver,
    RunHooks,
    RunRequest,
    RunResult,
    RunStopped,
    Step,
    TurnBudget,
)
from afctl.runtime.tool_dispatch import ToolDispatch

if TYPE_CHECKING:
    from afctl.promptlog.service import RestoredRun
    from afctl.runtime.resumption import Resumption

__all__ = [
    "AgentRun",
    "Approver",
    "LogRecorder",
    "MemoryRecorder",
    "Recorder",
    "RunHooks",
    "RunRequest",
    "RunResult",
    "Step",
    "TurnBudget",
    "render_instructions",
    "resource_bundle",
]


class AgentRun:
    """One run of one agent. Create, then `await run(input)` (or `resume(...)`) once."""

    def __init__(
        self,
        agent: str,
        environment: RunEnvironment,
        recorder: Recorder,
        request: RunRequest | None = None,
        hooks: RunHooks | None = None,
    ) -> None:
        self.agent = agent
        self.environment = environment
        self.recorder = recorder
        self.request = request or RunRequest()
        self.hooks = hooks or RunHooks()
        self.redact = environment.secrets.redact
        self.journal = RunJournal(recorder, self.request.run_id or new_ulid(), self.redact,
                                  self.hooks.on_event)  # fmt: skip
        # the collaborators get what they need, not the run: no reference cycles, so a
        # finished run is freed at once (an eval makes thousands)
        ask = functools.partial(_ask_agent, environment, recorder, self.request.env,
                                self.journal.run_id, self.hooks)  # fmt: skip
        self.tools = ToolDispatch(self.journal, self.hooks, ask)
        self.mcp = McpConnections(environment)
        self.models = RunModels(environment, self.journal, self.request, self.hooks)
        self.turns = 0
        self.final_agent: str | None = None
        self._new_messages: list[Message] = []

    @property
    def run_id(self) -> str:
        return self.journal.run_id

    @property
    def trail(self) -> list[Step]:
        """The run's tool calls, handoffs and guardrail decisions as logged (redacted)."""
        return self.journal.trail

    # -- starting, resuming and ending -----------------------------------------------------

    async def run(self, user_input: str) -> RunResult:
        from afctl.logs import current_run

        token = current_run.set(self.run_id)
        try:
            return await self._run(user_input)
        finally:
            current_run.reset(token)

    async def _run(self, user_input: str) -> RunResult:
        from afctl.logs import event as log_event
        from afctl.logs import note_started

        started = time.perf_counter()
        bundle, revision = agent_revision(self.agent, self.environment)
        spec = bundle["Agent"][self.agent].get("spec") or {}
        variables = agent_variables(spec, self.request.variables, self.environment)
        model_ref = self.request.model or str(spec.get("model"))
        # input guardrails come first: what they redact is never written, and a block means
        # no model or tool is ever called
        guarded, guard_error = None, None
        input_guardrails = (spec.get("guardrails") or {}).get("input") or []
        if input_guardrails:
            from afctl.runtime.guardrails import run_guardrails

            try:
                guarded = await run_guardrails(
                    input_guardrails, user_input, "input", self._checks(self.agent)
                )
                user_input = guarded.text
            except RunError as exc:
                guard_error, user_input = exc, "[withheld: the input guardrails could not run]"
        self.recorder.revision(revision, f"agent/{self.agent}", bundle, self.redact)
        note_started(self.run_id, "agent", self.request.parent_id)
        self.recorder.start(
            self._row(bundle["Agent"][self.agent], revision, model_ref),
            user_input,
            variables,
            self.redact,
        )
        log_event(logging.INFO, f"run started: agent/{self.agent}", model=model_ref)
        if guarded is not None:
            self.journal.event("guardrail", guarded.to_dict("input"), status=guarded.status)

        async def conversation() -> str:
            if guard_error is not None:
                raise guard_error
            if guarded is not None and guarded.blocked is not None:
                raise RunStopped("guardrail", _blocked_reason(guarded), "blocked", guarded.message)
            return await self._first_turn(spec, user_input, model_ref)

        return await self._complete(conversation(), spec, started)

    def _row(self, document: dict[str, Any], revision: str, model_ref: str) -> dict[str, Any]:
        """The run's columns in the log as it starts."""
        import json

        labels = (document.get("metadata") or {}).get("labels")
        request = self.request
        return {
            "id": self.run_id,
            "kind": "agent",
            "target": f"agent/{self.agent}",
            "agent": self.agent,
            "revision_hash": revision,
            "env": request.env,
            "model": model_ref,
            "session_id": request.session,
            "parent_id": request.parent_id,
            "labels": json.dumps(labels, sort_keys=True) if labels else None,
            "replay_of": request.replay_of,
            "eval_id": request.eval_id,
            "is_replay": 1 if request.replay_of else 0,
            **({"worker": request.worker, "heartbeat_at": utc_now()} if request.worker else {}),
        }

    async def resume(self, restored: RestoredRun, approved: bool | None = None) -> RunResult:
        """Go on, as the same run, with a run from the log: one paused for approval (`approved`:
        the person's decision on its pending tool calls, which then run or are answered as
        denied) or one a crash interrupted (`approved` None). Either goes on from its last
        recorded model answer (see `resumption`), with the agent revision it started with.

        Raises:
            UsageError: the run is not awaiting approval (or, with `approved` None, not
                interrupted).
        """
        from afctl.errors import UsageError
        from afctl.logs import current_run
        from afctl.runtime.resumption import resumption

        started = time.perf_counter()
        record, events = restored.run, restored.events
        if approved is not None and record.status != "awaiting_approval":
            raise UsageError(f"run {record.id} is {record.status}, not awaiting approval")
        if approved is None and record.status != "interrupted":
            raise UsageError(f"run {record.id} is {record.status}; only an interrupted run "
                             "resumes")  # fmt: skip
        state = resumption(record, events)
        if approved is not None and state is not None:
            request = next(e for e in reversed(events) if e.type == "approval_requested")
            state.decided.update(dict.fromkeys(request.payload["pending"], approved))
        self.journal.resume_at(record.id, max((e.seq for e in events), default=0))
        spec = self.environment.catalog.get("Agent", self.agent).get("spec") or {}
        limits = spec.get("limits") or {}
        budget = TurnBudget(int(limits.get("max_turns", DEFAULT_MAX_TURNS)))
        if state is not None:
            self.turns, self.tools.count = state.turn, state.tool_calls
            self.models.spend, self.models.label = state.spend, record.model
            budget.left -= self.turns
            self._new_messages = state.messages[state.own_from :]
        self.recorder.reopen(record.id)
        token = current_run.set(self.run_id)
        try:

            async def conversation() -> str:
                if state is None:  # stopped before its model first answered: start again
                    user_input = str(restored.payload.get("input") or "")
                    return await self._first_turn(spec, user_input, str(record.model))
                active = await self._activate(state.agent)
                return await self._converse(active, state.messages, limits, budget, state.turn,
                                            state)  # fmt: skip

            return await self._complete(conversation(), spec, started)
        finally:
            current_run.reset(token)

    async def _complete(
        self, conversation: Awaitable[str], spec: dict[str, Any], started: float
    ) -> RunResult:
        """Carry the conversation to its end under the run's time limit, and record how it
        ended."""
        status, output, error_type, error = "failed", None, None, None
        timeout = (spec.get("limits") or {}).get("timeout_s")
        try:
            output = await (asyncio.wait_for(conversation, timeout) if timeout else conversation)
            status = "succeeded"
        except RunStopped as stop:
            status, output = stop.status, stop.output
            error_type, error = stop.error_type, stop.message
        except TimeoutError:
            error_type, error = "timeout", f"limit: the run took longer than {timeout} s"
        except ProviderError as exc:
            error_type, error = "provider", exc.message
        except RunError as exc:
            error_type, error = "config", exc.message + (f" ({exc.hint})" if exc.hint else "")
        except (asyncio.CancelledError, KeyboardInterrupt):
            status, error_type, error = "interrupted", "interrupted", "interrupted by the user"
            self._finish(status, None, error_type, error, started)
            raise
        finally:
            await self.models.aclose()
            await self.mcp.aclose()  # the servers this run started stop with it
        if error is not None and status != "awaiting_approval":
            # whoever started the run is shown its error (the terminal, an eval's report);
            # a step of a workflow in the background is logged
            shown = (status == "blocked" or self.request.eval_id is not None
                     or self.request.parent_id is None)  # fmt: skip
            self.journal.event("error", {"error_type": error_type, "message": error},
                               status=error_type, quiet=shown)  # fmt: skip
        self._finish(status, output, error_type, error, started)
        if self.request.session is not None and status == "succeeded":
            self.recorder.remember(
                self.request.session,
                self.agent,
                self.run_id,
                [m.to_dict() for m in self._new_messages],
                self.redact,
            )
        return RunResult(  # what callers print and store holds no secret either
            self.run_id,
            status,
            None if output is None else self.redact(output),
            None if error is None else self.redact(error),
            error_type,
            self.models.spend.usage,
            self.models.spend.cost,
            (time.perf_counter() - started) * 1000,
            self.turns,
            self.tools.count,
            self.models.label,
            self.final_agent,
        )

    def _finish(
        self,
        status: str,
        output: str | None,
        error_type: str | None,
        error: str | None,
        started: float,
    ) -> None:
        from afctl.logs import event as log_event

        spend = self.models.spend
        totals = {
            "status": status,
            "model": self.models.label,
            "latency_ms": (time.perf_counter() - started) * 1000,
            "turns": self.turns,
            "tool_calls": self.tools.count,
            **{
                k: v
                for k, v in self.models.spend.usage.counts().items()
                if k != "cached_input_tokens"
            },
            "cost_usd": self.models.spend.cost,
            "error_type": error_type,
            "error": error,
        }
        self.recorder.finish(self.run_id, totals, output, self.redact)
        if status != "interrupted":
            log_event(logging.INFO, f"run {status}", status=status, turns=self.turns,
                      input_tokens=spend.usage.input_tokens,
                      output_tokens=spend.usage.output_tokens, cost_usd=spend.cost)  # fmt: skip

    # -- the turns -------------------------------------------------------------------------

    async def _activate(self, name: str, model_ref: str | None = None) -> Active:
        """Let agent `name` answer from now on."""
        active = await activate(name, self.environment, self.request.variables, self.mcp,
                                model_ref)  # fmt: skip
        self.models.use(active)
        return active

    async def _first_turn(self, spec: dict[str, Any], user_input: str, model_ref: str) -> str:
        active = await self._activate(self.agent, model_ref)
        limits = spec.get("limits") or {}
        budget = self.hooks.turn_budget or TurnBudget(
            int(limits.get("max_turns", DEFAULT_MAX_TURNS))
        )
        messages: list[Message] = [active.system] if active.system else []
        if self.request.history is not None:
            messages.extend(self.request.history)
        elif self.request.session is not None:
            memory = spec.get("memory") or {}
            limit = int(memory.get("max_messages", DEFAULT_MEMORY_MESSAGES))
            history = self.recorder.history(self.request.session, limit)
            messages.extend(Message.from_dict(m) for m in _whole_turns(history))
        user = Message("user", user_input)
        messages.append(user)
        self._new_messages.append(user)
        return await self._converse(active, messages, limits, budget, 1)

    async def _converse(
        self,
        active: Active,
        messages: list[Message],
        limits: dict[str, Any],
        budget: TurnBudget,
        first_turn: int,
        resumed: Resumption | None = None,
    ) -> str:
        """Turns from `first_turn` on. A `resumed` run's conversation ends with an answer
        already given (the last message): what was not done of it is done first."""
        max_turns = int(limits.get("max_turns", DEFAULT_MAX_TURNS))
        repaired = resumed is not None and resumed.repaired
        for turn in range(first_turn, max_turns + 1):
            self.turns = turn
            if resumed is not None:
                message, given, resumed = messages[-1], resumed, None
            else:
                given = None
                budget.spend()
                message = await self.models.answer(active, messages, turn)
                self.models.spend.check(limits)
                messages.append(message)
                self._new_messages.append(message)
            if message.tool_calls:
                results, target = await self._tool_results(active, message, limits, turn,
                                                           budget, given)  # fmt: skip
                messages.extend(results)
                self._new_messages.extend(results)
                if target is not None:
                    if given is None or given.handoff is None:
                        self.journal.event("handoff", {"from": active.name, "to": target},
                                           turn=turn)  # fmt: skip
                    active = await self._activate(target)
                    messages = _with_system(messages, active.system)
                continue
            output = message.content or ""
            if given is not None:  # the output guardrails had their say when it was recorded
                if given.blocked is not None:
                    from afctl.runtime.resumption import blocked_reason

                    raise RunStopped("guardrail", blocked_reason(given.blocked), "blocked",
                                     output)  # fmt: skip
                problems = self._recorded_problems(given.invalid)
            else:
                output_guardrails = (active.spec.get("guardrails") or {}).get("output") or []
                if output_guardrails:
                    output = await self._guard_output(output_guardrails, messages, turn,
                                                      active.name)  # fmt: skip
                problems = self._output_problems(active, output, turn, repaired)
            if problems:
                repaired = True
                text = f"Your answer does not match the required JSON Schema: {problems}."
                messages.append(Message("user", text + " Reply again with only the JSON."))
                continue
            self.final_agent = active.name
            return output
        raise RunStopped("limit", f"limit: the agent did not finish within max_turns={max_turns}")

    async def _tool_results(
        self,
        active: Active,
        answer: Message,
        limits: dict[str, Any],
        turn: int,
        budget: TurnBudget,
        resumed: Resumption | None,
    ) -> tuple[list[Message], str | None]:
        """The results of the answer's tool calls, in their order, and the agent to hand off
        to; a resumed answer's recorded results are used, and only its other calls made."""
        if resumed is None:
            return await self.tools.run_calls(active, answer.tool_calls, limits, turn, budget)
        done = resumed.results
        left = tuple(c for c in answer.tool_calls if c.id not in done)
        if not left:
            return [done[c.id] for c in answer.tool_calls], resumed.handoff
        made, target = await self.tools.run_calls(active, left, limits, turn, budget,
                                                  resumed.decided, resumed.recorded)  # fmt: skip
        by_call = {id(call): result for call, result in zip(left, made, strict=True)}
        results = [done[c.id] if c.id in done else by_call[id(c)] for c in answer.tool_calls]
        return results, target

    def _recorded_problems(self, invalid: dict[str, Any] | None) -> str:
        """What the output_schema check recorded of a resumed final answer ("" if nothing);
        a second mismatch ends the run, as it did."""
        if invalid is None:
            return ""
        problems = "; ".join(invalid.get("problems") or [])
        if not invalid.get("repair"):
            raise RunStopped("output_schema", "the output does not match output_schema: "
                             + problems)  # fmt: skip
        return problems

    def _output_problems(self, active: Active, output: str, turn: int, repaired: bool) -> str:
        """What makes the answer not match the agent's output_schema ("" when it does); a
        second mismatch ends the run."""
        if active.output_validator is None:
            return ""
        from afctl.tools.base import json_problems

        problems = json_problems(output, active.output_validator)
        if not problems:
            return ""
        self.journal.event(
            "output_invalid", {"problems": problems, "repair": not repaired}, turn=turn
        )
        if repaired:
            raise RunStopped(
                "output_schema", "the output does not match output_schema: " + "; ".join(problems)
            )
        return "; ".join(problems)

    # -- guardrails ------------------------------------------------------------------------

    def _checks(self, agent: str) -> Any:
        """What the guardrails of `agent` may use: its grant decides which python runs."""
        from afctl.runtime.guardrails import Checks

        document = self.environment.catalog.get("Agent", agent)
        return Checks(self.environment.secrets, self.environment.grant(document), self._judge)

    async def _judge(self, model_ref: str, instructions: str, text: str) -> str:
        return await self.models.judge(model_ref, instructions, text, self.turns)

    async def _guard_output(
        self, guardrails: list[dict[str, Any]], messages: list[Message], turn: int, agent: str
    ) -> str:
        """Run the output guardrails on the answer just given (the last message), then record
        the model call that gave it, with the answer as the guardrails left it."""
        from afctl.runtime.guardrails import run_guardrails

        answer = messages[-1]
        outcome = await run_guardrails(
            guardrails, answer.content or "", "output", self._checks(agent)
        )
        text = outcome.message if outcome.blocked is not None else outcome.text
        guarded = Message("assistant", text)
        messages[-1] = guarded
        if self._new_messages and self._new_messages[-1] is answer:
            self._new_messages[-1] = guarded
        self.models.release(guarded)
        self.journal.event("guardrail", outcome.to_dict("output"), turn=turn,
                           status=outcome.status)  # fmt: skip
        if outcome.blocked is not None:
            raise RunStopped("guardrail", _blocked_reason(outcome), "blocked", outcome.message)
        return text or ""


async def _ask_agent(
    environment: RunEnvironment,
    recorder: Recorder,
    env: str,
    parent_id: str,
    hooks: RunHooks,
    tool: Any,
    arguments: dict[str, Any],
    budget: TurnBudget,
) -> str:
    """Run another agent as a tool: a child run in the log, sharing the parent's budget."""
    from afctl.tools.base import ToolFailed

    child = AgentRun(
        tool.agent,
        environment,
        recorder,
        RunRequest(env=env, parent_id=parent_id),
        RunHooks(
            approver=hooks.approver, provider_factory=hooks.provider_factory, turn_budget=budget
        ),
    )
    result = await child.run(tool.render_input(arguments))
    if not result.ok:
        raise ToolFailed(f"agent {tool.agent} {result.status} (run {result.run_id}): "
                         f"{result.error}")  # fmt: skip
    return result.output or ""


def _blocked_reason(outcome: Any) -> str:
    decision = outcome.blocked
    return f"blocked by guardrail {decision.name}" + (
        f": {decision.reason}" if decision.reason else ""
    )


def _with_system(messages: list[Message], system: Message | None) -> list[Message]:
    """The conversation with its system message replaced (a handoff changes who answers)."""
    rest = messages[1:] if messages and messages[0].role == "system" else messages
    return [system, *rest] if system is not None else list(rest)


def _whole_turns(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop leading messages that would start the history mid-exchange (tool results whose
    calls were cut off by the memory limit)."""
    start = 0
    while start < len(history) and history[start].get("role") != "user":
        start += 1
    return history[start:]

"""The agent loop: instructions, model calls, tool calls, limits, structured output, and a
complete record of every step in the prompt log.

One run: render the instructions (sandboxed jinja2, StrictUndefined), send the conversation
to the model (afctl's retry policy, then the fallback models), run the tool calls it asks for
(concurrently; arguments validated against each tool's JSON Schema; a failure goes back to the
model as the tool's result, never a crash), and repeat until the model answers, a limit is
reached, or something fails. Every request, response, tool call and result is written to the
prompt log as it happens, redacted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afctl.errors import RunError
from afctl.ids import new_ulid
from afctl.promptlog.store import PromptLog
from afctl.providers.models import ModelConfig
from afctl.providers.pool import ProviderPool
from afctl.providers.retry import RetryPolicy, call_with_retries
from afctl.providers.types import (
    Message,
    ModelRequest,
    ModelResponse,
    OnText,
    Provider,
    ProviderError,
    ProviderFactory,
    ToolCall,
    Usage,
)
from afctl.runtime.environment import RunEnvironment
from afctl.runtime.streaming import CleanStream
from afctl.state.diff import content_hash

if TYPE_CHECKING:
    from afctl.promptlog.cache import ResponseCache
    from afctl.safety.secrets import Secrets

DEFAULT_MAX_TURNS = 10
DEFAULT_TOOL_TIMEOUT_S = 60.0
DEFAULT_MEMORY_MESSAGES = 40
MAX_TOOL_RESULT_CHARS = 100_000


@dataclass(frozen=True)
class RunResult:
    """What a run produced; everything else about it is in the prompt log under `run_id`."""

    run_id: str
    status: str
    output: str | None
    error: str | None = None
    error_type: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    latency_ms: float = 0.0
    turns: int = 0
    tool_calls: int = 0
    model: str | None = None
    agent: str | None = None
    """The agent that gave the output (another than the one started, after a handoff)."""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "error_type": self.error_type,
            "usage": {k: v for k, v in self.usage.counts().items() if k != "cached_input_tokens"},
            "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_ms, 1),
            "turns": self.turns,
            "tool_calls": self.tool_calls,
            "model": self.model,
            "agent": self.agent,
        }


class _Stop(Exception):
    """Ends a run early with a status (a limit, an invalid output): not an error of afctl's."""

    def __init__(
        self, error_type: str, message: str, status: str = "failed", output: str | None = None
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status
        self.output = output


Approver = Callable[[str, dict[str, Any]], Awaitable[bool]]
"""(tool name, arguments) -> whether a person allows the call."""


@dataclass
class RunOptions:
    variables: dict[str, Any] = field(default_factory=dict)
    session: str | None = None
    model: str | None = None
    """Use this model instead of the agent's (`afctl run --model`)."""
    on_text: OnText | None = None
    env: str = "default"
    parent_id: str | None = None
    provider_factory: ProviderFactory | None = None
    """Builds providers; afctl's registry (with plugins) by default. Replay serves recorded ones."""
    turn_budget: TurnBudget | None = None
    """Model calls left for this run and the agents it calls as tools (shared with them)."""
    approver: Approver | None = None
    """Asks a person whether a tool call may run; without one, such a run pauses."""
    params: dict[str, Any] = field(default_factory=dict)
    """Model parameters over the agent's (`afctl replay --live --set k=v`)."""
    eval_id: str | None = None
    """The eval this run is a case of."""
    replay_of: str | None = None
    """The run this one replays live: recorded with it, and its spend tagged as a replay's."""
    history: list[Message] | None = None
    """The conversation before this input, given directly (replay) instead of from a session."""
    tool_runner: Callable[[ToolCall, int], Awaitable[Any]] | None = None
    """Carries out (tool call, turn) instead of the tools themselves: replay serves recorded
    results this way. Raise ToolFailed for a failed call."""
    cache: ResponseCache | None = None
    """Answers model calls it has seen (evals); a cached answer costs nothing."""
    repeat: int = 0
    """Which repeat of an eval case this run is: part of the cache key."""
    commit_at_end: bool = True
    """A run returns once all of it is on disk; an eval, which stores its results together at
    the end, lets its many short runs share commits instead."""


class TurnBudget:
    """The model calls a run may still make, shared with the agents it calls as tools, so
    agents calling each other cannot loop past the run's `max_turns`."""

    def __init__(self, turns: int) -> None:
        self.limit = turns
        self.left = turns

    def spend(self) -> None:
        if self.left <= 0:
            raise _Stop("limit", f"limit: the run and its agents used up max_turns={self.limit}")
        self.left -= 1


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


@dataclass
class _Active:
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


def _revision(name: str, environment: RunEnvironment) -> tuple[dict[str, Any], str]:
    bundle = resource_bundle(name, environment)
    return bundle, content_hash(bundle)


@dataclass(frozen=True)
class Step:
    """An event of a run as it was logged."""

    type: str
    payload: dict[str, Any]


_TRAIL = frozenset({"tool_call", "handoff", "guardrail"})


class AgentRun:
    """One run of one agent. Create, then `await run(input)` once."""

    def __init__(
        self,
        agent: str,
        environment: RunEnvironment,
        log: PromptLog,
        options: RunOptions | None = None,
    ) -> None:
        self.agent = agent
        self.environment = environment
        self.log = log
        self.options = options or RunOptions()
        self.run_id = new_ulid()
        self.redact = environment.secrets.redact
        self._seq = 0
        self._own_pool = environment.providers is None
        self._pool = environment.providers or ProviderPool()
        self.usage = Usage()
        self.cost: float | None = 0.0
        self.turns = 0
        self.tool_call_count = 0
        self.model_label: str | None = None
        self.final_agent: str | None = None
        self._held: tuple[str, dict[str, Any], dict[str, Any]] | None = None
        self._said_not_streamed = False
        self._own_mcp = environment.mcp is None
        self._mcp_pool = environment.mcp
        self._new_messages: list[Message] = []
        self.trail: list[Step] = []
        """The run's tool calls, handoffs and guardrail decisions as logged (redacted), for
        whoever looks at the run's outcome without reading the log back (evals)."""

    # -- the prompt log --------------------------------------------------------------------

    def event(self, kind: str, payload: dict[str, Any], **narrow: Any) -> None:
        """Record an event; log it too (`quiet=True`: at info level, for what the caller of the
        run is shown anyway, so a terminal does not print one failure three times)."""
        quiet = bool(narrow.pop("quiet", False))
        self._seq += 1
        text = self.log.record_event(self.run_id, self._seq, kind, payload, self.redact, **narrow)
        if kind in _TRAIL:
            self.trail.append(Step(kind, json.loads(text)))
        level = _LOG_LEVELS.get(kind)
        if level is not None and quiet:
            level = logging.INFO
        if level is not None:
            from afctl.logs import event, logger

            if logger.isEnabledFor(level):
                event(level, self.redact(_log_line(kind, payload, narrow)), event=kind, **narrow)

    # -- the run ---------------------------------------------------------------------------

    async def run(self, user_input: str) -> RunResult:
        from afctl.logs import current_run

        token = current_run.set(self.run_id)
        try:
            return await self._run(user_input)
        finally:
            current_run.reset(token)

    async def _run(self, user_input: str) -> RunResult:
        started = time.perf_counter()
        bundle, revision = self.environment.catalog.derived(
            ("revision", self.agent), lambda: _revision(self.agent, self.environment)
        )
        spec = bundle["Agent"][self.agent].get("spec") or {}
        variables = self._variables(spec)
        model_ref = self.options.model or str(spec.get("model"))
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
        self.log.store_revision(revision, f"agent/{self.agent}", bundle, self.redact)
        from afctl.logs import note_started

        note_started(self.run_id, "agent", self.options.parent_id)
        self.log.start_run(
            {
                "id": self.run_id,
                "kind": "agent",
                "target": f"agent/{self.agent}",
                "agent": self.agent,
                "revision_hash": revision,
                "env": self.options.env,
                "model": model_ref,
                "session_id": self.options.session,
                "parent_id": self.options.parent_id,
                "labels": _labels(bundle["Agent"][self.agent]),
                "replay_of": self.options.replay_of,
                "eval_id": self.options.eval_id,
                "is_replay": 1 if self.options.replay_of else 0,
            },
            user_input,
            variables,
            self.redact,
        )
        from afctl.logs import event as log_event

        log_event(logging.INFO, f"run started: agent/{self.agent}", model=model_ref)
        if guarded is not None:
            self.event("guardrail", guarded.to_dict("input"), status=guarded.status)

        async def conversation() -> str:
            if guard_error is not None:
                raise guard_error
            if guarded is not None and guarded.blocked is not None:
                raise _Stop("guardrail", _blocked_reason(guarded), "blocked", guarded.message)
            return await self._loop(spec, user_input, model_ref)

        return await self._complete(conversation(), spec, started)

    async def _complete(
        self, conversation: Awaitable[str], spec: dict[str, Any], started: float
    ) -> RunResult:
        """Carry the conversation to its end under the run's time limit, and record how it
        ended."""
        from afctl.logs import event as log_event

        status, output, error_type, error = "failed", None, None, None
        timeout = (spec.get("limits") or {}).get("timeout_s")
        try:
            output = await (asyncio.wait_for(conversation, timeout) if timeout else conversation)
            status = "succeeded"
        except _Stop as stop:
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
            await self._close_providers()
            if self._own_mcp and self._mcp_pool is not None:
                await self._mcp_pool.aclose()  # the servers this run started stop with it
                self._mcp_pool = None
        if error is not None and status != "awaiting_approval":
            # whoever started the run is shown its error (the terminal, an eval's report);
            # a step of a workflow in the background is logged
            shown = (status == "blocked" or self.options.eval_id is not None
                     or self.options.parent_id is None)  # fmt: skip
            self.event("error", {"error_type": error_type, "message": error}, status=error_type,
                       quiet=shown)  # fmt: skip
        self._finish(status, output, error_type, error, started)
        log_event(
            logging.INFO,
            f"run {status}",
            status=status,
            turns=self.turns,
            input_tokens=self.usage.input_tokens,
            output_tokens=self.usage.output_tokens,
            cost_usd=self.cost,
        )
        if self.options.session is not None and status == "succeeded":
            self.log.append_session(
                self.options.session,
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
            self.usage,
            self.cost,
            (time.perf_counter() - started) * 1000,
            self.turns,
            self.tool_call_count,
            self.model_label,
            self.final_agent,
        )

    async def _mcp_tools(
        self, resource: str, spec: dict[str, Any], taken: frozenset[str]
    ) -> list[Any]:
        """The tools of an MCP server (started on the first call of one of them)."""
        from afctl.tools.mcp_tool import McpPool

        if self._mcp_pool is None:
            self._mcp_pool = McpPool(self.environment.workspace_dir)
        document = self.environment.catalog.get("Tool", resource)
        return await self._mcp_pool.tools(resource, spec, self.environment.scoped(document), taken)

    async def resume(self, run_id: str, approved: bool) -> RunResult:
        """Go on with a run that paused for approval: its pending tool calls run (approved) or
        are answered as denied, and the conversation continues from the log, as the same run.

        Raises:
            UsageError: no such run, or it is not awaiting approval.
        """
        from afctl.errors import UsageError
        from afctl.logs import current_run

        started = time.perf_counter()
        record = self.log.run(run_id)
        if record.status != "awaiting_approval":
            raise UsageError(f"run {record.id} is {record.status}, not awaiting approval")
        events = list(self.log.events(record.id))
        request = next(e for e in reversed(events) if e.type == "approval_requested")
        call = next(e for e in reversed(events) if e.type == "model_call")
        messages = [Message.from_dict(m) for m in call.payload["request"]["messages"]]
        messages.append(Message.from_dict(call.payload["response"]["message"]))
        self.run_id, self._seq = record.id, events[-1].seq
        self.turns, self.tool_call_count = request.turn or 1, record.tool_calls or 0
        self.usage = Usage(record.input_tokens or 0, record.output_tokens or 0,
                           known=record.input_tokens is not None)  # fmt: skip
        self.cost, self.model_label = record.cost_usd, record.model
        spec = self.environment.catalog.get("Agent", self.agent).get("spec") or {}
        limits = spec.get("limits") or {}
        budget = TurnBudget(int(limits.get("max_turns", DEFAULT_MAX_TURNS)))
        budget.left -= self.turns
        decided = dict.fromkeys(request.payload["pending"], approved)
        self.log.reopen_run(record.id)
        token = current_run.set(self.run_id)
        try:

            async def conversation() -> str:
                active = await self._activate(str(request.payload["agent"]))
                return await self._converse(active, messages, limits, budget, self.turns, decided)

            return await self._complete(conversation(), spec, started)
        finally:
            current_run.reset(token)

    def _finish(
        self,
        status: str,
        output: str | None,
        error_type: str | None,
        error: str | None,
        started: float,
    ) -> None:
        self.log.finish_run(
            self.run_id,
            {
                "status": status,
                "model": self.model_label,
                "latency_ms": (time.perf_counter() - started) * 1000,
                "turns": self.turns,
                "tool_calls": self.tool_call_count,
                **{k: v for k, v in self.usage.counts().items() if k != "cached_input_tokens"},
                "cost_usd": self.cost,
                "error_type": error_type,
                "error": error,
            },
            output,
            {},
            self.redact,
            now=self.options.commit_at_end,
        )

    async def _activate(self, name: str, model_ref: str | None = None) -> _Active:
        """Everything needed to let agent `name` answer: models, tools, handoffs, system."""
        from afctl.tools.agent_tool import HandoffTool
        from afctl.tools.base import Validator
        from afctl.tools.registry import build_tools

        catalog = self.environment.catalog
        document = catalog.get("Agent", name)
        self.environment.grant(document).references(document)
        spec = document.get("spec") or {}
        chain = [self._model(model_ref or str(spec.get("model")))]
        chain.extend(self._model(fallback) for fallback in chain[0].fallback)
        tools: list[Any] = []
        approvals: dict[str, Any] = {}
        listed = [str(r) for r in spec.get("tools") or []]
        specs = {r: (catalog.find("Tool", r) or {}).get("spec") or {} for r in listed}
        built = {r: build_tools([r], self.environment, owner=document)
                 for r in listed if specs[r].get("type") != "mcp"}  # fmt: skip
        taken = frozenset(t.spec.name for made in built.values() for t in made)
        for resource in listed:
            tool_spec = specs[resource]
            if tool_spec.get("type") == "mcp":
                made = await self._mcp_tools(resource, tool_spec, taken)
            else:
                made = built[resource]
            tools.extend(made)
            rule = tool_spec.get("approval", "never")
            if rule != "never":
                approvals.update((tool.spec.name, rule) for tool in made)
        if spec.get("knowledge"):
            from afctl.tools.knowledge_tool import KnowledgeTool

            for pack in spec.get("knowledge") or []:
                document = catalog.get("KnowledgePack", str(pack))
                tools.append(KnowledgeTool(str(pack), document, self.environment))
        handoffs: dict[str, str] = {}
        for target in spec.get("handoffs") or []:
            document = catalog.get("Agent", str(target))
            tool = HandoffTool(str(target), (document.get("metadata") or {}).get("description"))
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
            variables = self._variables(spec)
            rendered = render_instructions(str(instructions), variables, self.environment.secrets)
            system = Message("system", rendered)
        output_schema = spec.get("output_schema")
        return _Active(
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

    def _model(self, ref: str) -> ModelConfig:
        """A model's configuration (resolved once per catalog), once its grant allows it."""
        return self.environment.model(ref)

    def _variables(self, spec: dict[str, Any]) -> dict[str, Any]:
        """An agent's `vars` (their `${env:...}` references resolved: the manifest wrote them)
        with the run's values over them (taken as text: a value never reaches a secret)."""
        resolve = self.environment.secrets.resolve
        written = {k: resolve(v) if isinstance(v, str) else v
                   for k, v in (spec.get("vars") or {}).items()}  # fmt: skip
        return {**written, **self.options.variables}

    async def _loop(self, spec: dict[str, Any], user_input: str, model_ref: str) -> str:
        active = await self._activate(self.agent, model_ref)
        limits = spec.get("limits") or {}
        budget = self.options.turn_budget or TurnBudget(
            int(limits.get("max_turns", DEFAULT_MAX_TURNS))
        )
        messages: list[Message] = [active.system] if active.system else []
        if self.options.history is not None:
            messages.extend(self.options.history)
        elif self.options.session is not None:
            memory = spec.get("memory") or {}
            limit = int(memory.get("max_messages", DEFAULT_MEMORY_MESSAGES))
            history = self.log.session_messages(self.options.session, limit)
            messages.extend(Message.from_dict(m) for m in _whole_turns(history))
        user = Message("user", user_input)
        messages.append(user)
        self._new_messages.append(user)
        return await self._converse(active, messages, limits, budget, 1)

    async def _converse(
        self,
        active: _Active,
        messages: list[Message],
        limits: dict[str, Any],
        budget: TurnBudget,
        first_turn: int,
        decided: dict[str, bool] | None = None,
    ) -> str:
        """Turns from `first_turn` on; when resuming, the tool calls that ended the conversation
        so far (the last message) are run first, with `decided` approvals."""
        from afctl.tools.base import json_problems

        max_turns = int(limits.get("max_turns", DEFAULT_MAX_TURNS))
        repaired = False
        pending = decided is not None
        for turn in range(first_turn, max_turns + 1):
            self.turns = turn
            if pending:
                pending = False
                calls = messages[-1].tool_calls
            else:
                budget.spend()
                response = await self._call_model(active, messages, turn)
                self._check_limits(limits)
                messages.append(response.message)
                self._new_messages.append(response.message)
                calls = response.message.tool_calls
            if calls:
                results, target = await self._run_calls(
                    active, calls, limits, turn, budget, decided
                )
                decided = None
                messages.extend(results)
                self._new_messages.extend(results)
                if target is not None:
                    self.event("handoff", {"from": active.name, "to": target}, turn=turn)
                    active = await self._activate(target)
                    messages = _with_system(messages, active.system)
                continue
            output = response.message.content or ""
            output_guardrails = (active.spec.get("guardrails") or {}).get("output") or []
            if output_guardrails:
                output = await self._guard_output(output_guardrails, messages, turn, active.name)
            if active.output_validator is not None:
                problems = json_problems(output, active.output_validator)
                if problems:
                    self.event(
                        "output_invalid", {"problems": problems, "repair": not repaired}, turn=turn
                    )
                    if repaired:
                        raise _Stop(
                            "output_schema",
                            "the output does not match output_schema: " + "; ".join(problems),
                        )
                    repaired = True
                    repair = Message(
                        "user",
                        "Your answer does not match the required JSON Schema: "
                        + "; ".join(problems)
                        + ". Reply again with only the JSON.",
                    )
                    messages.append(repair)
                    continue
            self.final_agent = active.name
            return output
        raise _Stop("limit", f"limit: the agent did not finish within max_turns={max_turns}")

    async def _approve(
        self,
        active: _Active,
        calls: tuple[ToolCall, ...],
        work: list[ToolCall],
        turn: int,
        decided: dict[str, bool] | None,
    ) -> set[str]:
        """The ids of the calls a person denied. Asks the approver for each call whose tool's
        `approval` rule requires it; without one, records the request and pauses the run."""
        from afctl.safety.expr import ExpressionError, truthy

        needed = []
        for call in work:
            rule = active.approvals.get(call.name)
            if isinstance(rule, dict):
                try:
                    if truthy(rule["when"], {"args": call.arguments}):
                        needed.append(call)
                except ExpressionError:  # a rule that cannot be decided asks a person
                    needed.append(call)
            elif rule == "always":
                needed.append(call)
        if not needed:
            return set()
        if decided is None and self.options.approver is None:
            self.event(
                "approval_requested",
                {
                    "agent": active.name,
                    "calls": [c.to_dict() for c in calls],
                    "pending": [c.id for c in needed],
                },
                turn=turn,
                status="waiting",
            )
            names = ", ".join(sorted({c.name for c in needed}))
            raise _Stop(
                "approval",
                f"waiting for a person to approve {names}",
                "awaiting_approval",
            )
        denied = set()
        for call in needed:
            if decided is not None:
                approved, by = decided.get(call.id, False), "afctl approve"
            else:
                assert self.options.approver is not None
                approved, by = await self.options.approver(call.name, call.arguments), "prompt"
            self.event(
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

    def _checks(self, agent: str) -> Any:
        """What the guardrails of `agent` may use: its grant decides which python runs."""
        from afctl.runtime.guardrails import Checks

        document = self.environment.catalog.get("Agent", agent)
        return Checks(self.environment.secrets, self.environment.grant(document), self._judge)

    async def _judge(self, model_ref: str, instructions: str, text: str) -> str:
        """One call to a judge model for an llm_judge guardrail; its cost is the run's."""
        config = self._model(model_ref)
        provider = self._provider(config)
        request = ModelRequest(
            config.model,
            (Message("system", instructions), Message("user", text)),
            (),
            dict(config.params),
            turn=self.turns,
        )
        response = await call_with_retries(
            _completion(provider, request, None, self._pool.gate(config)),
            RetryPolicy(max_retries=config.max_retries),
        )
        self._add_usage(config, response)
        return response.message.content or ""

    async def _guard_output(
        self, guardrails: list[dict[str, Any]], messages: list[Message], turn: int, agent: str
    ) -> str:
        """Run the output guardrails on the answer just given (the last message), then record
        the model call that gave it, with the answer as the guardrails left it."""
        from afctl.runtime.guardrails import run_guardrails

        answer = messages[-1]
        checks = self._checks(agent)
        outcome = await run_guardrails(guardrails, answer.content or "", "output", checks)
        text = outcome.message if outcome.blocked is not None else outcome.text
        guarded = Message("assistant", text)
        messages[-1] = guarded
        if self._new_messages and self._new_messages[-1] is answer:
            self._new_messages[-1] = guarded
        held, self._held = self._held, None
        if held is not None:
            kind, payload, narrow = held
            response = {**payload["response"], "message": guarded.to_dict()}
            self.event(kind, {**payload, "response": response}, **narrow)
        self.event("guardrail", outcome.to_dict("output"), turn=turn, status=outcome.status)
        if outcome.blocked is not None:
            raise _Stop("guardrail", _blocked_reason(outcome), "blocked", outcome.message)
        return text or ""

    async def _run_calls(
        self,
        active: _Active,
        calls: tuple[ToolCall, ...],
        limits: dict[str, Any],
        turn: int,
        budget: TurnBudget,
        decided: dict[str, bool] | None = None,
    ) -> tuple[list[Message], str | None]:
        """Run a turn's tool calls (concurrently); returns their results in the order of the
        calls, and the agent to hand off to, if the model asked for one. Calls that need a
        person's approval are asked for first, or the run pauses (`awaiting_approval`)."""
        handoff = next((c for c in calls if c.name in active.handoffs), None)
        work = [c for c in calls if c.name not in active.handoffs]
        denied = await self._approve(active, calls, work, turn, decided)
        work = [c for c in work if c.id not in denied]
        self.tool_call_count += len(work)
        cap = limits.get("max_tool_calls")
        if cap is not None and self.tool_call_count > int(cap):
            raise _Stop("limit", f"limit: more than max_tool_calls={cap} tool calls")
        if len(work) == 1:
            done = [await self._call_tool(work[0], active, turn, budget)]
        else:
            done = list(
                await asyncio.gather(*(self._call_tool(c, active, turn, budget) for c in work))
            )
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

    async def _call_model(
        self, active: _Active, messages: list[Message], turn: int
    ) -> ModelResponse:
        chain = active.chain
        # an answer that output guardrails may block or redact is neither streamed nor
        # recorded before they have run
        guarded = bool((active.spec.get("guardrails") or {}).get("output"))
        on_text = None if guarded else self.options.on_text
        if guarded and self.options.on_text is not None and not self._said_not_streamed:
            self._said_not_streamed = True
            from afctl.logs import event as log_event

            log_event(logging.WARNING, f"agent/{active.name} has output guardrails: its answer "
                      "is shown once they have passed it, not streamed")  # fmt: skip
        echo = None if on_text is None else CleanStream(on_text)
        last_error: ProviderError | None = None
        for index, config in enumerate(chain):
            params = {**config.params, **(active.spec.get("params") or {}), **self.options.params}
            request = ModelRequest(
                config.model,
                tuple(messages),
                tuple(t.spec for t in active.tools),
                params,
                stream=on_text is not None,
                turn=turn,
            )
            if index > 0:
                self.event(
                    "fallback",
                    {"from": chain[index - 1].label, "to": config.label, "error": str(last_error)},
                    turn=turn,
                    model=config.label,
                )
            started = time.perf_counter()
            cache = self.options.cache
            lookup = None if cache is None else cache.get(
                config, request, self.options.repeat, self.run_id
            )  # fmt: skip
            if lookup is not None and lookup.response is not None:
                response = lookup.response
                if on_text is not None and response.message.content:
                    on_text(response.message.content)
                return self._answered(active, config, request, response, started, cached=True)
            provider = self._provider(config)
            started = time.perf_counter()  # the call's latency, not the client's set-up

            def retried(
                attempt: int, error: ProviderError, delay: float, label: str = config.label
            ) -> None:
                self.event(
                    "retry",
                    {
                        "attempt": attempt,
                        "error": error.message,
                        "status": error.status,
                        "delay_s": delay,
                    },
                    turn=turn,
                    model=label,
                    status=str(error.status or "transport"),
                )

            try:
                response = await call_with_retries(
                    _completion(provider, request, echo, self._pool.gate(config)),
                    RetryPolicy(max_retries=config.max_retries),
                    on_retry=retried,
                )
            except ProviderError as error:
                last_error = error
                self.event(
                    "model_error",
                    {
                        **_call_payload(active.name, config, request),
                        "error": error.message,
                        "status": error.status,
                        "retryable": error.retryable,
                    },
                    turn=turn,
                    model=config.label,
                    status=str(error.status or "transport"),
                    latency_ms=(time.perf_counter() - started) * 1000,
                    quiet=not (error.retryable and index + 1 < len(chain)),  # the run says it
                )
                if error.retryable and index + 1 < len(chain):
                    continue
                raise
            if cache is not None and lookup is not None:
                cache.put(lookup, response, self.redact)
            return self._answered(active, config, request, response, started)
        assert last_error is not None
        raise last_error

    def _answered(
        self,
        active: _Active,
        config: ModelConfig,
        request: ModelRequest,
        response: ModelResponse,
        started: float,
        *,
        cached: bool = False,
    ) -> ModelResponse:
        """Count a model's answer into the run and record the call."""
        latency = (time.perf_counter() - started) * 1000
        cost = self._add_usage(config, response, spent=not cached)
        self.model_label = config.label
        payload = {
            **_call_payload(active.name, config, request),
            "response": response.to_dict(),
            "pricing": config.pricing.to_dict() if config.pricing else None,
            **({"cached": True} if cached else {}),
        }
        narrow = {
            "turn": request.turn,
            "model": config.label,
            "status": response.finish_reason,
            "latency_ms": latency,
            "input_tokens": response.usage.counts()["input_tokens"],
            "output_tokens": response.usage.counts()["output_tokens"],
            "cost_usd": cost,
        }
        guarded = bool((active.spec.get("guardrails") or {}).get("output"))
        if guarded and not response.message.tool_calls:
            self._held = ("model_call", payload, narrow)  # recorded once guarded
        else:
            self.event("model_call", payload, **narrow)
        return response

    def _add_usage(
        self, config: ModelConfig, response: ModelResponse, *, spent: bool = True
    ) -> float | None:
        """Add a model call's tokens and cost to the run's; returns the call's cost (0 when
        nothing was `spent`: a cached answer)."""
        from afctl.providers.pricing import cost_usd

        cost = cost_usd(config, response.usage)
        if cost is not None and not spent:
            cost = 0.0
        self.usage = self.usage.plus(response.usage)
        self.cost = None if cost is None or self.cost is None else self.cost + cost
        return cost

    def _check_limits(self, limits: dict[str, Any]) -> None:
        max_tokens = limits.get("max_tokens")
        if max_tokens is not None and self.usage.total > int(max_tokens):
            raise _Stop(
                "limit", f"limit: {self.usage.total} tokens used, over max_tokens={max_tokens}"
            )
        max_cost = limits.get("max_cost_usd")
        if max_cost is not None and self.cost is not None and self.cost > float(max_cost):
            raise _Stop("limit", f"limit: cost ${self.cost:.4f}, over max_cost_usd={max_cost}")

    def _provider(self, config: ModelConfig) -> Provider:
        factory = self.options.provider_factory
        if factory is None:
            from afctl.providers.builtin import make_provider

            factory = make_provider
        return self._pool.get(config, self.environment, factory)

    async def _close_providers(self) -> None:
        if self._own_pool:
            await self._pool.aclose()

    async def _call_tool(
        self, call: ToolCall, active: _Active, turn: int, budget: TurnBudget
    ) -> Message:
        from afctl.tools.agent_tool import AgentTool
        from afctl.tools.base import result_text

        started = time.perf_counter()
        tools, validators = active.by_name, active.validators
        tool = tools.get(call.name)
        error: str | None = None
        value: Any = None
        if tool is None:
            error = f"there is no tool named {call.name!r}; tools: {', '.join(sorted(tools))}"
        elif call.raw_arguments and not _is_json_object(call.raw_arguments):
            error = "the arguments are not a JSON object"
        else:
            problems = validators[call.name].problems(call.arguments)
            if problems:
                error = "invalid arguments: " + "; ".join(problems)
        if error is None and tool is not None:
            timeout = tool.timeout_s or DEFAULT_TOOL_TIMEOUT_S
            try:
                async with asyncio.timeout(timeout):
                    if self.options.tool_runner is not None:
                        value = await self.options.tool_runner(call, turn)
                    elif isinstance(tool, AgentTool):
                        value = await self._ask_agent(tool, dict(call.arguments), budget)
                    else:
                        value = await tool.call(dict(call.arguments))
            except TimeoutError:
                error = f"the tool did not finish within {timeout:g} s"
            except RunError as exc:
                error = exc.message
            except Exception as exc:  # the tool's own failure goes back to the model
                error = f"{type(exc).__name__}: {exc}"
        from afctl.tools.knowledge_tool import Passages

        if isinstance(value, Passages):
            self.event(
                "retrieval",
                {"pack": value.pack, "query": value.query, "hits": value.hits},
                turn=turn,
                tool=call.name,
                status=f"{len(value.hits)} hits",
            )
        text = f"error: {error}" if error is not None else result_text(value)
        if len(text) > MAX_TOOL_RESULT_CHARS:
            text = text[:MAX_TOOL_RESULT_CHARS] + " …[truncated]"
        self.event(
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

    async def _ask_agent(self, tool: Any, arguments: dict[str, Any], budget: TurnBudget) -> str:
        """Run another agent as a tool: a child run in the log, sharing this run's budget."""
        from afctl.tools.base import ToolFailed

        child = AgentRun(
            tool.agent,
            self.environment,
            self.log,
            RunOptions(
                env=self.options.env,
                parent_id=self.run_id,
                provider_factory=self.options.provider_factory,
                turn_budget=budget,
                approver=self.options.approver,
            ),
        )
        result = await child.run(tool.render_input(arguments))
        if not result.ok:
            raise ToolFailed(f"agent {tool.agent} {result.status} (run {result.run_id}): "
                             f"{result.error}")  # fmt: skip
        return result.output or ""


def _labels(document: dict[str, Any]) -> str | None:
    labels = (document.get("metadata") or {}).get("labels")
    return json.dumps(labels, sort_keys=True) if labels else None


def _blocked_reason(outcome: Any) -> str:
    decision = outcome.blocked
    return f"blocked by guardrail {decision.name}" + (
        f": {decision.reason}" if decision.reason else ""
    )


def _with_system(messages: list[Message], system: Message | None) -> list[Message]:
    """The conversation with its system message replaced (a handoff changes who answers)."""
    rest = messages[1:] if messages and messages[0].role == "system" else messages
    return [system, *rest] if system is not None else list(rest)


_LOG_LEVELS = {
    "model_call": logging.INFO,
    "tool_call": logging.INFO,
    "handoff": logging.INFO,
    "retry": logging.WARNING,
    "fallback": logging.WARNING,
    "model_error": logging.WARNING,
    "error": logging.ERROR,
}


def _log_line(kind: str, payload: dict[str, Any], narrow: dict[str, Any]) -> str:
    if kind == "retry":
        return (
            f"{narrow.get('model')}: {payload.get('error')}; retry {payload.get('attempt')} "
            f"in {payload.get('delay_s', 0):.1f} s"
        )
    if kind == "fallback":
        return f"falling back from {payload.get('from')} to {payload.get('to')}"
    if kind == "model_error":
        return f"{narrow.get('model')}: {payload.get('error')}"
    if kind == "error":
        return f"run failed: {payload.get('message')}"
    if kind == "tool_call":
        return f"tool {narrow.get('tool')}: {narrow.get('status')}"
    if kind == "handoff":
        return f"handoff from {payload.get('from')} to {payload.get('to')}"
    return f"{narrow.get('model')} answered ({narrow.get('status')})"


def _call_payload(agent: str, config: ModelConfig, request: ModelRequest) -> dict[str, Any]:
    return {
        "agent": agent,
        "provider": config.provider,
        "model_ref": config.ref,
        "request": request.to_dict(),
    }


def _completion(
    provider: Provider,
    request: ModelRequest,
    echo: CleanStream | None,
    gate: asyncio.Semaphore | None,
) -> Callable[[], Awaitable[ModelResponse]]:
    """One attempt at a model call, inside the model's concurrency limit when it has one
    (waits between retries are spent outside it); a streamed one passes its text on through
    `echo`, so a retry does not show the answer twice."""

    async def attempt() -> ModelResponse:
        on_text = None if echo is None else echo.attempt()
        if gate is None:
            return await provider.complete(request, on_text)
        async with gate:
            return await provider.complete(request, on_text)

    return attempt


def _is_json_object(raw: str) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


def _whole_turns(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop leading messages that would start the history mid-exchange (tool results whose
    calls were cut off by the memory limit)."""
    start = 0
    while start < len(history) and history[start].get("role") != "user":
        start += 1
    return history[start:]

"""Running a Workflow: its steps as a DAG of agent runs, tool calls and sub-workflows.

A step starts when the steps it `needs` have succeeded (or, with `needs_any`, when those are
all done and one succeeded) and its `when` condition holds; otherwise it is skipped, and so
are the steps that need it. Steps whose dependencies are met run concurrently, at most
`max_parallel` at a time (the items of a `for_each` count one each). A failing step is
retried as its `retry` says, each attempt within `timeout_s`; when it keeps failing,
`on_error` decides: `fail` the workflow, `continue` without it, or run the named handler
step instead.

Inputs, templates and conditions: a step's `input` is a template (or a mapping or list of
them) over `inputs`, `steps.<id>.output`, `vars` and, under `for_each`, `item`; rendered in
jinja2's sandbox within a budget. `when` and `for_each` are safe expressions over the same
names. A step's output is what its agent answered (parsed when it is JSON, so fields are
addressable), what its tool returned, or the sub-workflow's outputs.

In the prompt log the workflow is a run of kind `workflow`; every step's agent run, tool call
and sub-workflow is a child run (`parent_id`), and every finished step is a `step` event of
the workflow run, committed at once: `resume` reads them back after a crash and runs only
what had not finished, as the same run.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from afctl.errors import RunError, UsageError
from afctl.hashing import content_hash
from afctl.ids import derived_ulid, new_ulid, utc_now
from afctl.promptlog.store import PromptLog
from afctl.runtime.environment import RunEnvironment
from afctl.runtime.run_types import ItemRunner, RunRequest, RunResult, Step
from afctl.runtime.workflow_values import StepFailed as StepFailed
from afctl.runtime.workflow_values import render_input as render_input
from afctl.runtime.workflow_values import structured as structured

MAX_DEPTH = 8
"""Sub-workflows nest at most this deep (a workflow that calls itself fails, not loops)."""
FINISHED = ("succeeded", "failed", "skipped")


@dataclass
class StepState:
    id: str
    status: str = "pending"
    """pending, running, succeeded, failed or skipped."""
    output: Any = None
    error: str | None = None
    attempts: int = 0
    runs: list[str] = field(default_factory=list)
    """The child runs of this step (one per attempt and item)."""
    reason: str | None = None
    """Why it was skipped."""

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v not in (None, [])}

    def view(self) -> dict[str, Any]:
        """What templates and expressions see as `steps.<id>`."""
        return {"output": self.output, "status": self.status, "error": self.error}


@dataclass
class WorkflowResult:
    run_id: str
    status: str
    outputs: dict[str, Any] | None
    steps: dict[str, StepState]
    error: str | None = None
    latency_ms: float = 0.0
    cost_usd: float | None = 0.0
    tokens: int = 0
    resumed: list[str] = field(default_factory=list)
    """Steps taken as done from the interrupted run (on resume)."""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "outputs": self.outputs,
            "error": self.error,
            "latency_ms": round(self.latency_ms, 1),
            "cost_usd": self.cost_usd,
            "tokens": self.tokens,
            "steps": {k: s.to_dict() for k, s in self.steps.items()},
            "resumed": self.resumed,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkflowResult:
        """A result as `to_dict` gave it (a remote client reads the server's answer)."""
        steps = {k: StepState(**v) for k, v in (data.get("steps") or {}).items()}
        return cls(data["run_id"], data["status"], data.get("outputs"), steps,
                   data.get("error"), float(data.get("latency_ms") or 0.0),
                   data.get("cost_usd"), int(data.get("tokens") or 0),
                   list(data.get("resumed") or []))  # fmt: skip


@dataclass
class WorkflowOptions:
    variables: dict[str, Any] = field(default_factory=dict)
    """`--var` values: the workflow's `vars` over its own, and the template variables of the
    agents its steps run."""
    env: str = "default"
    parent_id: str | None = None
    depth: int = 0
    eval_id: str | None = None
    sleep: Callable[[float], Any] = asyncio.sleep
    """How retries wait (tests pass a fake)."""
    source: Any = None
    """Serves each step's result instead of running it (offline replay: RecordedSteps)."""
    cache: Any = None
    """The response cache the agent steps use (an eval's), with the case's `repeat`."""
    repeat: int = 0
    on_event: Callable[[str, dict[str, Any]], None] | None = None
    """Told of each step as it settles (`step`, its record as kept): a server streams them."""
    worker: str | None = None
    """The `afctl worker` carrying the run out (recorded with it)."""
    fan_out: ItemRunner | None = None
    """Runs the items of `for_each` agent steps elsewhere (on `afctl worker`s); None: here."""


class WorkflowRun:
    """One run of one workflow. Create, then `await run(inputs)` once (or `resume`)."""

    def __init__(
        self,
        name: str,
        environment: RunEnvironment,
        log: PromptLog,
        options: WorkflowOptions | None = None,
        run_id: str | None = None,
    ) -> None:
        self.name = name
        self.environment = environment
        self.log = log
        self.options = options or WorkflowOptions()
        self.run_id = run_id or new_ulid()
        self.document = environment.catalog.get("Workflow", name)
        self.spec: dict[str, Any] = self.document.get("spec") or {}
        self._seq = 0
        self.cost: float | None = 0.0
        self.tokens = 0
        self._gate = asyncio.Semaphore(int(self.spec.get("max_parallel", 4)))
        self.trail: list[Step] = []
        """The tool steps' calls as they succeeded (tool assertions of evals read them)."""
        self.revision = ""
        """The content hash of what the workflow runs on (its bundle)."""
        self.resuming = False

    # -- entry points ----------------------------------------------------------------------

    async def run(self, inputs: dict[str, Any]) -> WorkflowResult:
        """Check `inputs` against the workflow's schema, then run every step.

        Raises:
            UsageError: the inputs do not match the workflow's `inputs` schema.
        """
        inputs = self.check_inputs(inputs)
        self.environment.grant(self.document).references(self.document)
        bundle = workflow_bundle(self.name, self.environment)
        revision = self.revision = content_hash(bundle)
        self.log.store_revision(revision, f"workflow/{self.name}", bundle, self._redact)
        self.log.start_run(
            {
                "id": self.run_id,
                "kind": "workflow",
                "target": f"workflow/{self.name}",
                "revision_hash": revision,
                "env": self.options.env,
                "parent_id": self.options.parent_id,
                "eval_id": self.options.eval_id,
                "is_replay": 0,
                "labels": json.dumps((self.document.get("metadata") or {}).get("labels") or {}),
                **(
                    {"worker": self.options.worker, "heartbeat_at": utc_now()}
                    if self.options.worker
                    else {}
                ),
            },
            json.dumps(inputs, ensure_ascii=False),
            {"inputs": inputs, "vars": self.options.variables},
            self._redact,
        )
        self.log.flush()  # a crash from here on leaves a run that `resume` can find
        from afctl.logs import note_started

        note_started(self.run_id, "workflow", self.options.parent_id)
        return await self._execute(inputs, {})

    async def resume(self, inputs: dict[str, Any], done: dict[str, StepState]) -> WorkflowResult:
        """Go on with an interrupted run: the steps in `done` are not run again; an agent run
        a step had started goes on (see `_agent_here`)."""
        self.revision = content_hash(workflow_bundle(self.name, self.environment))
        self.resuming = True
        self.log.reopen_run(self.run_id)
        result = await self._execute(inputs, done)
        result.resumed = sorted(done)
        return result

    def skip_seq(self, seq: int) -> None:
        """Number new events after `seq` (the events an interrupted run already has)."""
        self._seq = seq

    # -- the run ---------------------------------------------------------------------------

    def _redact(self, text: str) -> str:
        return self.environment.secrets.redact(text)

    def check_inputs(self, inputs: dict[str, Any]) -> dict[str, Any]:
        """`inputs` with the defaults of the workflow's `inputs` schema filled in.

        Raises:
            UsageError: they do not match the schema.
        """
        schema = self.spec.get("inputs")
        if not isinstance(schema, dict):
            return inputs
        from afctl.tools.base import Validator, with_defaults

        inputs = with_defaults(schema, inputs)
        problems = Validator(schema).problems(inputs)
        if problems:
            raise UsageError(
                f"workflow/{self.name}: the input does not match its schema: "
                + "; ".join(p.replace("arguments", "input") for p in problems),
                hint="give the inputs with --input NAME=VALUE or --input-file FILE.json",
            )
        return inputs

    async def _execute(self, inputs: dict[str, Any], done: dict[str, StepState]) -> WorkflowResult:
        started = time.perf_counter()
        steps = [s for s in self.spec.get("steps") or [] if isinstance(s, dict)]
        states = {str(s["id"]): done.get(str(s["id"])) or StepState(str(s["id"])) for s in steps}
        context = {"inputs": inputs, "vars": {**(self.spec.get("vars") or {}),
                                               **self.options.variables}}  # fmt: skip
        status, error, outputs = "succeeded", None, None
        try:
            timeout = self.spec.get("timeout_s")
            schedule = self._schedule(steps, states, context)
            if timeout:
                await asyncio.wait_for(schedule, float(timeout))
            else:
                await schedule
            outputs = self._outputs(states, context)
        except TimeoutError:
            status, error = "failed", f"the workflow took longer than {self.spec['timeout_s']} s"
        except RunError as exc:
            status, error = "failed", exc.message
        except asyncio.CancelledError:
            self._finish("interrupted", None, "interrupted", started)
            raise
        self._finish(status, outputs, error, started)
        return WorkflowResult(
            self.run_id, status, outputs, states, error,
            (time.perf_counter() - started) * 1000, self.cost, self.tokens,
        )  # fmt: skip

    def _finish(
        self, status: str, outputs: dict[str, Any] | None, error: str | None, started: float
    ) -> None:
        self.log.finish_run(
            self.run_id,
            {
                "status": status,
                "latency_ms": (time.perf_counter() - started) * 1000,
                # the spend is the child runs' (counted there); the totals go in the details
                "cost_usd": 0.0,
                "error_type": None if error is None else "workflow",
                "error": error,
            },
            None if outputs is None else json.dumps(outputs, ensure_ascii=False, default=str),
            {"total_cost_usd": self.cost, "total_tokens": self.tokens},
            self._redact,
        )

    async def _schedule(
        self, steps: list[dict[str, Any]], states: dict[str, StepState], context: dict[str, Any]
    ) -> None:
        """Start every step whose dependencies are settled, until all are finished."""
        handlers = {str(s["on_error"]) for s in steps
                    if s.get("on_error") not in (None, "fail", "continue")}  # fmt: skip
        by_id = {str(s["id"]): s for s in steps}
        running: dict[asyncio.Task[None], str] = {}
        triggered: dict[str, dict[str, Any]] = {}  # handler -> the error it handles
        try:
            while True:
                for step in steps:
                    step_id = str(step["id"])
                    state = states[step_id]
                    if state.status != "pending":
                        continue
                    if step_id in handlers and step_id not in triggered:
                        continue
                    verdict = "run" if step_id in triggered else self._ready(step, states, context)
                    if verdict == "wait":
                        continue
                    if verdict != "run":
                        self._settle(state, "skipped", reason=verdict)
                        continue
                    state.status = "running"
                    extra = {"error": triggered[step_id]} if step_id in triggered else {}
                    scope = {**self._scope(states, context), **extra}
                    task = asyncio.create_task(self._run_step(step, state, scope))
                    running[task] = step_id
                if not running:
                    break
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    step_id = running.pop(task)
                    state = states[step_id]
                    error = task.exception()
                    if error is None:
                        continue
                    if not isinstance(error, Exception):  # a replay's divergence: stop here
                        raise error
                    message = error.message if isinstance(error, RunError) else repr(error)
                    self._settle(state, "failed", error=message)
                    on_error = str(by_id[step_id].get("on_error") or "fail")
                    if on_error == "continue":
                        continue
                    if on_error == "fail":
                        raise RunError(f"step {step_id} failed: {message}")
                    triggered[on_error] = {"step": step_id, "message": message}
            for step_id in handlers - set(triggered):
                if states[step_id].status == "pending":
                    self._settle(states[step_id], "skipped", reason="no step failed")
        finally:
            for task in running:
                task.cancel()
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _ready(
        self, step: dict[str, Any], states: dict[str, StepState], context: dict[str, Any]
    ) -> str:
        """`run`, `wait`, or why the step is skipped."""
        needs = [str(n) for n in step.get("needs") or []]
        needs_any = [str(n) for n in step.get("needs_any") or []]
        if any(states[n].status not in FINISHED for n in needs + needs_any):
            return "wait"
        unmet = [n for n in needs if states[n].status != "succeeded"]
        if unmet:
            return f"{unmet[0]} did not succeed"
        if needs_any and not any(states[n].status == "succeeded" for n in needs_any):
            return f"none of {', '.join(needs_any)} succeeded"
        condition = step.get("when")
        if condition is not None:
            from afctl.safety.expr import ExpressionError, truthy

            try:
                if not truthy(str(condition), self._scope(states, context)):
                    return f"when: {condition} is false"
            except ExpressionError as exc:
                raise RunError(f"step {step['id']}: when: {exc.message}") from None
        return "run"

    def _scope(self, states: dict[str, StepState], context: dict[str, Any]) -> dict[str, Any]:
        return {**context, "steps": {k: s.view() for k, s in states.items()}}

    def _settle(self, state: StepState, status: str, **details: Any) -> None:
        """Mark a step finished and record it at once (resume relies on these events)."""
        state.status = status
        for key, value in details.items():
            setattr(state, key, value)
        self._seq += 1
        kept = self.log.record_event(
            self.run_id, self._seq, "step", state.to_dict(), self._redact,
            tool=state.id, status=status,
        )  # fmt: skip
        self.log.flush()
        if self.options.on_event is not None:
            self.options.on_event("step", json.loads(kept))

    async def _run_step(
        self, step: dict[str, Any], state: StepState, scope: dict[str, Any]
    ) -> None:
        """One step to the end: every item of its for_each, each attempt of each."""
        items: list[Any] | None = None
        if step.get("for_each") is not None:
            from afctl.safety.expr import ExpressionError, evaluate

            try:
                value = evaluate(str(step["for_each"]), scope)
            except ExpressionError as exc:
                raise RunError(f"step {state.id}: for_each: {exc.message}") from None
            if not isinstance(value, list):
                raise RunError(f"step {state.id}: for_each gave {type(value).__name__}, not a list")
            items = value
        if items is None:
            output = await self._attempts(step, state, scope)
        else:  # concurrently, in order; the first failure stops the other items
            tasks = [asyncio.create_task(self._attempts(step, state, {**scope, "item": item},
                                                        index))
                     for index, item in enumerate(items)]  # fmt: skip
            try:
                output = await asyncio.gather(*tasks)
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        self._settle(state, "succeeded", output=output)

    async def _attempts(
        self, step: dict[str, Any], state: StepState, scope: dict[str, Any],
        index: int | None = None,
    ) -> Any:  # fmt: skip
        """Each attempt at one step (or one `for_each` item, `index`) until one succeeds."""
        retry = step.get("retry") or {}
        attempts = int(retry.get("attempts", 1))
        delay = float(retry.get("backoff_s", 1.0))
        ceiling = float(retry.get("max_backoff_s", 60.0))
        retried_on = set(retry.get("on") or ("error", "timeout"))
        for attempt in range(1, attempts + 1):
            state.attempts += 1
            try:
                async with self._gate:
                    call = self._call(step, state, scope, (index, attempt))
                    timeout = step.get("timeout_s")
                    if timeout:
                        try:
                            return await asyncio.wait_for(call, float(timeout))
                        except TimeoutError:
                            raise StepFailed(
                                f"the attempt took longer than {timeout} s", "timeout"
                            ) from None
                    return await call
            except StepFailed as failure:
                if attempt == attempts or not _retried(failure.kind, retried_on):
                    raise
                wait = min(ceiling, delay * 2 ** (attempt - 1)) * random.uniform(0.8, 1.2)
                await self.options.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(
        self, step: dict[str, Any], state: StepState, scope: dict[str, Any],
        place: tuple[int | None, int],
    ) -> Any:  # fmt: skip
        """One attempt; `place` is (the for_each item's index or None, the attempt)."""
        if "agent" in step:
            return await self._agent_step(step, state, scope, place)
        if "tool" in step:
            return await self._tool_step(step, state, scope)
        return await self._workflow_step(step, state, scope)

    # -- the kinds of step -----------------------------------------------------------------

    async def _agent_step(
        self, step: dict[str, Any], state: StepState, scope: dict[str, Any],
        place: tuple[int | None, int],
    ) -> Any:  # fmt: skip
        from afctl.runtime.agent import RunRequest

        value = render_input(step.get("input", ""), scope, state.id)
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        agent = str(step["agent"])
        if self.options.source is not None:
            output, child = self.options.source.agent(state.id, agent, text)
            state.runs.append(child)
            return output
        index, attempt = place
        request = RunRequest(
            dict(self.options.variables), env=self.options.env, parent_id=self.run_id,
            eval_id=self.options.eval_id, repeat=self.options.repeat,
            run_id=derived_ulid(self.run_id, state.id, -1 if index is None else index, attempt),
            worker=self.options.worker,
        )  # fmt: skip
        state.runs.append(str(request.run_id))
        fan_out = self.options.fan_out
        if fan_out is not None and index is not None:
            result = await fan_out.agent(self.revision, agent, text, request,
                                         cache=self.options.cache is not None)  # fmt: skip
        else:
            result = await self._agent_here(agent, text, request)
        self._count(result.cost_usd, result.usage.input_tokens + result.usage.output_tokens)
        if not result.ok:
            kind = "provider_error" if result.error_type == "provider" else "error"
            raise StepFailed(f"agent/{step['agent']}: {result.error or result.status}", kind)
        return structured(result.output or "")

    async def _agent_here(self, agent: str, text: str, request: RunRequest) -> RunResult:
        """Run a step's agent on this loop. When the workflow resumes, the run the step had
        started (its id is the same each time) goes on instead: finished, its result stands;
        interrupted, it goes on from its last recorded answer, so tool calls with recorded
        results are not made again."""
        from afctl.runtime.agent import AgentRun, LogRecorder, RunHooks

        agent_run = AgentRun(agent, self.environment, LogRecorder(self.log), request,
                             RunHooks(cache=self.options.cache))  # fmt: skip
        run_id = str(request.run_id)
        found = self.log.sql.query("SELECT status FROM runs WHERE id = ?", [run_id]) if (
            self.resuming) else []  # fmt: skip
        if not found:
            return await agent_run.run(text)
        from afctl.promptlog.service import RestoredRun
        from afctl.runtime.resumption import recorded_result

        if found[0]["status"] == "running":  # it stopped with this workflow
            self.log.sql.execute("UPDATE runs SET status = 'interrupted' WHERE id = ?", [run_id])
        record = self.log.run(run_id)
        if record.status != "interrupted":
            return recorded_result(self.log, record)
        events = list(self.log.events(run_id))
        return await agent_run.resume(RestoredRun(record, self.log.payload(run_id), events,
                                                  self.log))  # fmt: skip

    async def _tool_step(
        self, step: dict[str, Any], state: StepState, scope: dict[str, Any]
    ) -> Any:
        from afctl.tools.base import ToolFailed, Validator
        from afctl.tools.registry import build_tools

        name = str(step["tool"])
        document = self.environment.catalog.find("Tool", name) or {}
        if (document.get("spec") or {}).get("type") == "mcp":
            raise RunError(f"step {state.id}: MCP tools are called through an agent, not a step")
        (tool,) = build_tools([name], self.environment, owner=self.document)
        arguments = render_input(step.get("input") or {}, scope, state.id, tool.spec.parameters)
        if not isinstance(arguments, dict):
            raise StepFailed(f"tool/{name} takes a mapping of arguments as its input")
        if self.options.source is not None:
            served, recorded = self.options.source.tool(state.id, name, arguments)
            state.runs.append(recorded)
            self.trail.append(Step("tool_call", {"name": name, "arguments": arguments}))
            return served
        child = new_ulid()
        state.runs.append(child)
        self.log.start_run(
            {"id": child, "kind": "tool", "target": f"tool/{name}", "env": self.options.env,
             "parent_id": self.run_id, "eval_id": self.options.eval_id, "is_replay": 0},
            json.dumps(arguments, ensure_ascii=False, default=str), {}, self._redact,
        )  # fmt: skip
        started = time.perf_counter()
        error: str | None = None
        result: Any = None
        problems = Validator(tool.spec.parameters).problems(arguments)
        try:
            if problems:
                raise ToolFailed("invalid arguments: " + "; ".join(problems))
            result = await tool.call(arguments)
        except ToolFailed as exc:
            error = exc.message
        except Exception as exc:  # the user's tool failing is the step's failure
            error = f"{type(exc).__name__}: {exc}"
        latency = (time.perf_counter() - started) * 1000
        self.log.record_event(
            child, 1, "tool_call",
            {"name": name, "arguments": arguments, "result": result, "error": error},
            self._redact, tool=name, status="error" if error else "ok", latency_ms=latency,
        )  # fmt: skip
        self.log.finish_run(
            child,
            {"status": "failed" if error else "succeeded", "latency_ms": latency,
             "tool_calls": 1, "error_type": "tool" if error else None, "error": error,
             "cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0},  # no model was asked
            None if error else json.dumps(result, ensure_ascii=False, default=str), {},
            self._redact,
        )  # fmt: skip
        if error is not None:
            raise StepFailed(f"tool/{name}: {error}", "tool_error")
        self.trail.append(Step("tool_call", {"name": name, "arguments": arguments}))
        return result

    async def _workflow_step(
        self, step: dict[str, Any], state: StepState, scope: dict[str, Any]
    ) -> Any:
        name = str(step["workflow"])
        if self.options.depth + 1 > MAX_DEPTH:
            raise RunError(f"step {state.id}: workflows nest deeper than {MAX_DEPTH}")
        schema = (self.environment.catalog.get("Workflow", name).get("spec") or {}).get("inputs")
        inputs = render_input(step.get("input") or {}, scope, state.id, schema)
        if not isinstance(inputs, dict):
            raise StepFailed(f"workflow/{name} takes a mapping of inputs as its input")
        if self.options.source is not None:
            outputs, recorded = self.options.source.workflow(state.id, name, inputs)
            state.runs.append(recorded)
            return outputs
        options = WorkflowOptions(
            dict(self.options.variables), self.options.env, self.run_id,
            self.options.depth + 1, self.options.eval_id, self.options.sleep,
            cache=self.options.cache, repeat=self.options.repeat, worker=self.options.worker,
            fan_out=self.options.fan_out,
        )  # fmt: skip
        child = WorkflowRun(name, self.environment, self.log, options)
        state.runs.append(child.run_id)
        try:
            result = await child.run(inputs)
        except UsageError as exc:
            raise StepFailed(exc.message) from None
        self._count(result.cost_usd, result.tokens)
        if not result.ok:
            raise StepFailed(f"workflow/{name}: {result.error}")
        return result.outputs

    def _count(self, cost: float | None, tokens: int) -> None:
        self.cost = None if cost is None or self.cost is None else self.cost + cost
        self.tokens += tokens

    def _outputs(self, states: dict[str, StepState], context: dict[str, Any]) -> dict[str, Any]:
        mapping = self.spec.get("outputs") or {}
        scope = self._scope(states, context)
        return {str(k): render_input(v, scope, f"outputs.{k}") for k, v in mapping.items()}


def _retried(kind: str, retried_on: set[str]) -> bool:
    return kind in retried_on or (
        "error" in retried_on and kind in ("provider_error", "tool_error")
    )


def workflow_bundle(name: str, environment: RunEnvironment) -> dict[str, Any]:
    """The workflow with every resource its steps may use (agents with theirs, tools,
    sub-workflows): the revision a workflow run records, and resumes from."""
    from afctl.runtime.activation import resource_bundle

    catalog = environment.catalog
    bundle: dict[str, Any] = {"Workflow": {}, "Agent": {}, "Tool": {}, "Model": {},
                              "KnowledgePack": {}}  # fmt: skip
    pending = [name]
    while pending:
        current = pending.pop()
        if current in bundle["Workflow"]:
            continue
        document = catalog.get("Workflow", current)
        bundle["Workflow"][current] = document
        for step in (document.get("spec") or {}).get("steps") or []:
            if "workflow" in step:
                pending.append(str(step["workflow"]))
            elif "tool" in step:
                tool = catalog.find("Tool", str(step["tool"]))
                if tool is not None:
                    bundle["Tool"][str(step["tool"])] = tool
            elif "agent" in step:
                for kind, documents in resource_bundle(str(step["agent"]), environment).items():
                    bundle.setdefault(kind, {}).update(documents)
    return bundle

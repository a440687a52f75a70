"""Offline replay of a workflow run: the workflow engine runs again (dependencies,
conditions, for_each, retries, error handling, templates, outputs) with every step's result
served from the child runs it recorded, so it proves the workflow reproduces its trajectory,
or reports the first step that went differently (a changed input template, condition or
dependency). Each agent step can itself be replayed offline (`afctl replay CHILD_RUN`).
Nothing is written to the prompt log."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from afctl.promptlog.store import EventRecord, PromptLog, RunRecord
from afctl.replay.offline import Diverged, Divergence, ReplayReport
from afctl.runtime.workflow import StepFailed, WorkflowRun, structured


@dataclass
class _Child:
    record: RunRecord
    input: str
    output: str | None
    used: bool = False


@dataclass
class RecordedSteps:
    """The child runs of a recorded workflow run, handed out as the engine asks for steps:
    for a step, the first unused child of that step whose recorded input is the input the
    engine gives now (attempts and for_each items come in the order they were recorded)."""

    redact: Any
    children: dict[str, list[_Child]] = field(default_factory=dict)
    """step id -> its child runs, oldest first."""
    served: int = 0

    @classmethod
    def load(cls, log: PromptLog, finished: list[EventRecord], redact: Any) -> RecordedSteps:
        """The child runs of the steps whose `step` events are `finished` (a step that never
        finished has none here: the replay runs it and must diverge), oldest first."""
        steps = cls(redact)
        owner = {child: e.payload["id"] for e in finished for child in e.payload.get("runs") or []}
        for child_id in sorted(owner):  # ULIDs sort in the order the runs started
            payload = log.payload(child_id)
            child = _Child(log.run(child_id), payload.get("input") or "", payload.get("output"))
            steps.children.setdefault(owner[child_id], []).append(child)
        return steps

    def take(self, step_id: str, target: str, given: str) -> _Child:
        """The recorded child for this step and input.

        Raises:
            Diverged: the recording has none.
        """
        shown = self.redact(given)
        candidates = [c for c in self.children.get(step_id, []) if not c.used]
        for child in candidates:
            if child.record.target == target and child.input == shown:
                child.used = True
                self.served += 1
                return child
        recorded = [c.input for c in candidates if c.record.target == target] or None
        what = (
            f"step {step_id} asked {target} with an input the recording does not have"
            if recorded
            else f"step {step_id} ran {target}, which the recording does not have"
        )
        raise Diverged(Divergence(self.served + 1, 0, what, recorded, shown))

    def agent(self, step_id: str, agent: str, text: str) -> tuple[Any, str]:
        child = self.take(step_id, f"agent/{agent}", text)
        if child.record.status != "succeeded":
            kind = "provider_error" if child.record.error_type == "provider" else "error"
            raise StepFailed(f"agent/{agent}: {child.record.error or child.record.status}", kind)
        return structured(child.output or ""), child.record.id

    def tool(self, step_id: str, tool: str, arguments: dict[str, Any]) -> tuple[Any, str]:
        given = json.dumps(arguments, ensure_ascii=False, default=str)
        child = self.take(step_id, f"tool/{tool}", given)
        if child.record.status != "succeeded":
            raise StepFailed(f"tool/{tool}: {child.record.error}", "tool_error")
        return json.loads(child.output or "null"), child.record.id

    def workflow(self, step_id: str, name: str, inputs: dict[str, Any]) -> tuple[Any, str]:
        given = json.dumps(inputs, ensure_ascii=False)
        child = self.take(step_id, f"workflow/{name}", given)
        if child.record.status != "succeeded":
            raise StepFailed(f"workflow/{name}: {child.record.error}")
        return json.loads(child.output or "null"), child.record.id


async def replay_workflow(
    engine: WorkflowRun,
    inputs: dict[str, Any],
    recorded: dict[str, tuple[str, Any]],
    recorded_output: str | None,
) -> ReplayReport:
    """Run `engine` (set up with a RecordedSteps source) on the recorded inputs and compare
    each step's outcome (`recorded`: step id -> (status, output)) and the outputs."""
    started = time.perf_counter()
    divergence = None
    output = None
    status = ""
    source = engine.options.source
    assert isinstance(source, RecordedSteps)
    try:
        result = await engine.run(inputs)
        status = result.status
        output = None if result.outputs is None else json.dumps(result.outputs, ensure_ascii=False)
    except Diverged as stop:
        divergence = stop.divergence
    else:
        for step_id, (was_status, was_output) in recorded.items():
            state = result.steps.get(step_id)
            now = None if state is None else (state.status, state.output)
            if now != (was_status, was_output):
                divergence = Divergence(
                    source.served, 0, f"step {step_id} went differently",
                    {"status": was_status, "output": was_output},
                    None if state is None else {"status": state.status, "output": state.output},
                )  # fmt: skip
                break
        if divergence is None and output != recorded_output:
            divergence = Divergence(source.served, 0, "the outputs differ", recorded_output, output)
    return ReplayReport(
        engine.run_id, divergence is None, source.served, divergence, output, recorded_output,
        (time.perf_counter() - started) * 1000, status,
    )  # fmt: skip

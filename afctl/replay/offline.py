"""Offline replay: run a recorded run again through the engine, with every model response and
tool result served from the prompt log. No network, no tool side effects.

Each model call is matched by its turn and must be asked exactly as recorded (messages, tools
offered, model, params; streaming aside), and each tool call by its turn, tool name and
arguments, in any order within the turn. The first request or call the recording does not
have is the divergence; a replay that uses every recorded step and ends with the recorded
output reproduces the run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from afctl.promptlog.store import EventRecord
from afctl.providers.models import ModelConfig
from afctl.providers.types import ModelRequest, ModelResponse, OnText, ToolCall, ToolSpec
from afctl.tools.base import ToolFailed


@dataclass(frozen=True)
class Divergence:
    step: int
    """1-based position among the recorded model and tool calls."""
    turn: int
    what: str
    expected: Any
    actual: Any

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class ReplayReport:
    run_id: str
    reproduced: bool
    steps: int
    """Recorded model and tool calls served."""
    divergence: Divergence | None
    output: str | None
    recorded_output: str | None
    engine_ms: float
    status: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["divergence"] = self.divergence.to_dict() if self.divergence else None
        return data


class Diverged(BaseException):
    """Stops the engine at the first divergence (a BaseException, so that no tool-error or
    provider-error handling in the loop can take it for an ordinary failure)."""

    def __init__(self, divergence: Divergence) -> None:
        super().__init__(divergence.what)
        self.divergence = divergence


class Recording:
    """The recorded steps of one run, handed out as the engine asks for them."""

    def __init__(self, events: list[EventRecord], redact: Any, *, tools: bool = True) -> None:
        """`tools`: serve tool results too (else the tools run, and only model calls count)."""
        self.redact = redact
        kinds = ("model_call", "tool_call") if tools else ("model_call",)
        self.steps = [e for e in events if e.type in kinds]
        self.used: set[int] = set()

    def _position(self, event: EventRecord) -> int:
        return self.steps.index(event) + 1

    def model_call(self, request: ModelRequest) -> ModelResponse:
        recorded = [e for e in self.steps if e.type == "model_call" and e.turn == request.turn]
        pending = [e for e in recorded if id(e) not in self.used]
        if not pending:
            raise Diverged(
                Divergence(len(self.used) + 1, request.turn, "the engine asked for a model call "
                           "the recording does not have", None, _request_view(request, self.redact))
            )  # fmt: skip
        event = pending[0]
        expected = _comparable(event.payload["request"])
        actual = _request_view(request, self.redact)
        if expected != actual:
            what, was, now = _first_difference(expected, actual)
            raise Diverged(Divergence(self._position(event), request.turn, what, was, now))
        self.used.add(id(event))
        return ModelResponse.from_dict(event.payload["response"])

    def tool_call(self, call: ToolCall, turn: int) -> str:
        candidates = [
            e for e in self.steps
            if e.type == "tool_call" and e.turn == turn and id(e) not in self.used
            and e.payload.get("name") == call.name
        ]  # fmt: skip
        arguments = json.loads(self.redact(json.dumps(call.arguments, default=str)))
        for event in candidates:
            if event.payload.get("arguments") == arguments:
                self.used.add(id(event))
                if event.payload.get("error") is not None:
                    raise ToolFailed(str(event.payload["error"]))
                return str(event.payload.get("result", ""))
        recorded = [e.payload.get("arguments") for e in candidates]
        if candidates:
            what = f"the engine called {call.name} with arguments the recording does not have"
        else:
            what = (
                f"the engine called {call.name}, which the recording does not have at turn {turn}"
            )
        raise Diverged(
            Divergence(
                len(self.used) + 1,
                turn,
                what,
                recorded or None,
                {"name": call.name, "arguments": arguments},
            )
        )

    def offered_tools(self) -> list[ToolSpec]:
        """The tools the recorded run offered its model (what an offline replay lists for an
        MCP server it does not start)."""
        for event in self.steps:
            if event.type == "model_call":
                return [ToolSpec(str(t.get("name")), str(t.get("description") or ""),
                                 dict(t.get("parameters") or {}))
                        for t in event.payload["request"].get("tools") or []]  # fmt: skip
        return []

    def unused(self) -> list[EventRecord]:
        return [e for e in self.steps if id(e) not in self.used]


class ReplayProvider:
    def __init__(self, recording: Recording) -> None:
        self.recording = recording

    async def complete(self, request: ModelRequest, on_text: OnText | None = None) -> ModelResponse:
        return self.recording.model_call(request)

    async def aclose(self) -> None:
        return None


def _comparable(request: dict[str, Any]) -> dict[str, Any]:
    """A request without what may differ between a run and its replay (streaming)."""
    return {k: v for k, v in request.items() if k != "stream"}


def _request_view(request: ModelRequest, redact: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(redact(json.dumps(request.to_dict(), default=str)))
    return _comparable(data)


def _first_difference(expected: dict[str, Any], actual: dict[str, Any]) -> tuple[str, Any, Any]:
    """What differs first between two requests, in words, with both sides."""
    if expected.get("model") != actual.get("model"):
        return "the model differs", expected.get("model"), actual.get("model")
    was_messages, now_messages = expected.get("messages", []), actual.get("messages", [])
    was_system = [m for m in was_messages if m.get("role") == "system"]
    now_system = [m for m in now_messages if m.get("role") == "system"]
    if was_system != now_system:
        return (
            "the instructions (system message) differ",
            was_system[0]["content"] if was_system else None,
            now_system[0]["content"] if now_system else None,
        )
    was_tools = {t["name"]: t for t in expected.get("tools", [])}
    now_tools = {t["name"]: t for t in actual.get("tools", [])}
    if sorted(was_tools) != sorted(now_tools):
        return "the tools offered differ", sorted(was_tools), sorted(now_tools)
    for name in sorted(was_tools):
        if was_tools[name] != now_tools[name]:
            return f"the tool {name} is described differently", was_tools[name], now_tools[name]
    for index, (was, now) in enumerate(zip(was_messages, now_messages, strict=False)):
        if was != now:
            return f"message {index + 1} of the conversation differs", was, now
    if len(was_messages) != len(now_messages):
        return "the conversation has another length", len(was_messages), len(now_messages)
    return "the model parameters differ", expected.get("params"), actual.get("params")


async def replay_run(
    agent_run: Any, user_input: str, recording: Recording, recorded_output: str | None
) -> ReplayReport:
    """Run `agent_run` (an AgentRun set up with this recording's provider and tool runner)
    on the recorded input and report whether it reproduced the recording."""
    started = time.perf_counter()
    divergence = None
    output = None
    status = ""
    error = None
    try:
        result = await agent_run.run(user_input)
        output, status, error = result.output, result.status, result.error
    except Diverged as stop:
        divergence = stop.divergence
    engine_ms = (time.perf_counter() - started) * 1000
    if divergence is None:
        left = recording.unused()
        if left:
            first = left[0]
            divergence = Divergence(
                recording.steps.index(first) + 1,
                first.turn or 0,
                "the engine stopped before this recorded step",
                first.type,
                f"{status}: {error}" if error else status,
            )
        elif output != recorded_output:
            divergence = Divergence(
                len(recording.steps), 0, "the final output differs", recorded_output, output
            )
    return ReplayReport(
        agent_run.run_id,
        divergence is None,
        len(recording.used),
        divergence,
        output,
        recorded_output,
        engine_ms,
        status,
    )


def replay_factory(recording: Recording) -> Any:
    provider = ReplayProvider(recording)

    def factory(config: ModelConfig, environment: Any) -> ReplayProvider:
        return provider

    return factory


def tool_runner(recording: Recording) -> Any:
    async def run(call: ToolCall, turn: int) -> str:
        return recording.tool_call(call, turn)

    return run

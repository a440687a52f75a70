"""Where a run writes down what happens: the `Recorder` interface, the prompt log's recorder,
an in-memory one (offline replay, tests), and `RunJournal`, which numbers a run's events,
keeps its trail and mirrors them to afctl's log.

The engine talks only to a Recorder; nothing in the turn loop knows about SQLite.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from afctl.runtime.run_types import OnEvent, Step

if TYPE_CHECKING:
    from afctl.promptlog.store import PromptLog

Redact = Callable[[str], str]


class Recorder(Protocol):
    """What a run records. `redact` is the run's: every text is redacted before it is kept."""

    def revision(self, digest: str, target: str, bundle: dict[str, Any], redact: Redact) -> None:
        """The resources the run uses, by content hash (kept once)."""

    def start(
        self, row: dict[str, Any], user_input: str, variables: dict[str, Any], redact: Redact
    ) -> None:
        """A run begins (`row` holds its columns: id, kind, target, agent, model...)."""

    def event(
        self, run_id: str, seq: int, kind: str, payload: dict[str, Any], redact: Redact,
        **narrow: Any,
    ) -> str:  # fmt: skip
        """One event; returns its payload as kept (redacted JSON)."""

    def finish(
        self, run_id: str, totals: dict[str, Any], output: str | None, redact: Redact
    ) -> None:
        """How the run ended."""

    def reopen(self, run_id: str) -> None:
        """A paused run goes on."""

    def history(self, session: str, limit: int) -> list[dict[str, Any]]:
        """The last `limit` messages of a session."""

    def remember(
        self, session: str, agent: str, run_id: str, messages: list[dict[str, Any]],
        redact: Redact,
    ) -> None:  # fmt: skip
        """Messages a run added to a session."""


@dataclass
class LogRecorder:
    """Records into the prompt log."""

    log: PromptLog
    commit_at_end: bool = True
    """A run returns once all of it is on disk; an eval, which stores its results together at
    the end, lets its many short runs share commits instead."""

    def revision(self, digest: str, target: str, bundle: dict[str, Any], redact: Redact) -> None:
        self.log.store_revision(digest, target, bundle, redact)

    def start(
        self, row: dict[str, Any], user_input: str, variables: dict[str, Any], redact: Redact
    ) -> None:
        self.log.start_run(row, user_input, variables, redact)

    def event(
        self, run_id: str, seq: int, kind: str, payload: dict[str, Any], redact: Redact,
        **narrow: Any,
    ) -> str:  # fmt: skip
        return self.log.record_event(run_id, seq, kind, payload, redact, **narrow)

    def finish(
        self, run_id: str, totals: dict[str, Any], output: str | None, redact: Redact
    ) -> None:
        self.log.finish_run(run_id, totals, output, {}, redact, now=self.commit_at_end)

    def reopen(self, run_id: str) -> None:
        self.log.reopen_run(run_id)

    def history(self, session: str, limit: int) -> list[dict[str, Any]]:
        return self.log.sessions.messages(session, limit)

    def remember(
        self, session: str, agent: str, run_id: str, messages: list[dict[str, Any]],
        redact: Redact,
    ) -> None:  # fmt: skip
        self.log.sessions.append(session, agent, run_id, messages, redact)


@dataclass
class MemoryRecorder:
    """Keeps a run's record in memory (redacted, as the prompt log would): offline replay
    records nothing on disk, and tests read what a run recorded without SQL."""

    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[str, int, str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)
    """(run id, seq, kind, payload as kept, narrow columns)."""
    revisions: dict[str, dict[str, Any]] = field(default_factory=dict)
    sessions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def revision(self, digest: str, target: str, bundle: dict[str, Any], redact: Redact) -> None:
        self.revisions.setdefault(digest, json.loads(redact(json.dumps(bundle))))

    def start(
        self, row: dict[str, Any], user_input: str, variables: dict[str, Any], redact: Redact
    ) -> None:
        self.runs[row["id"]] = {**row, "status": "running", "input": redact(user_input),
                                "vars": json.loads(redact(json.dumps(variables)))}  # fmt: skip

    def event(
        self, run_id: str, seq: int, kind: str, payload: dict[str, Any], redact: Redact,
        **narrow: Any,
    ) -> str:  # fmt: skip
        text = redact(json.dumps(payload, ensure_ascii=False, default=str))
        self.events.append((run_id, seq, kind, json.loads(text), narrow))
        return text

    def finish(
        self, run_id: str, totals: dict[str, Any], output: str | None, redact: Redact
    ) -> None:
        run = self.runs.setdefault(run_id, {"id": run_id})
        run.update(totals, output=None if output is None else redact(output))
        if run.get("error"):
            run["error"] = redact(str(run["error"]))

    def reopen(self, run_id: str) -> None:
        run = self.runs.setdefault(run_id, {"id": run_id})
        run.update(status="running", error=None, error_type=None)

    def history(self, session: str, limit: int) -> list[dict[str, Any]]:
        return self.sessions.get(session, [])[-limit:] if limit > 0 else []

    def remember(
        self, session: str, agent: str, run_id: str, messages: list[dict[str, Any]],
        redact: Redact,
    ) -> None:  # fmt: skip
        kept = [json.loads(redact(json.dumps(message))) for message in messages]
        self.sessions.setdefault(session, []).extend(kept)

    def kinds(self, run_id: str) -> list[str]:
        """The kinds of a run's events in order."""
        return [kind for run, _, kind, _, _ in self.events if run == run_id]


_TRAIL = frozenset({"tool_call", "handoff", "guardrail"})

_LOG_LEVELS = {
    "model_call": logging.INFO,
    "tool_call": logging.INFO,
    "handoff": logging.INFO,
    "retry": logging.WARNING,
    "fallback": logging.WARNING,
    "model_error": logging.WARNING,
    "error": logging.ERROR,
}


class RunJournal:
    """A run's events in order: each is recorded, kept in the trail when it is a tool call,
    handoff or guardrail decision, and mirrored to afctl's log at its level."""

    def __init__(
        self, recorder: Recorder, run_id: str, redact: Redact, listener: OnEvent | None = None
    ) -> None:
        self.recorder = recorder
        self.run_id = run_id
        self.redact = redact
        self.listener = listener
        """Told of each event as kept (a server streaming the run)."""
        self.seq = 0
        self.trail: list[Step] = []
        """The run's tool calls, handoffs and guardrail decisions as logged (redacted), for
        whoever looks at the run's outcome without reading the log back (evals)."""

    def resume_at(self, run_id: str, seq: int) -> None:
        """Go on writing the events of an earlier run after its event `seq`."""
        self.run_id, self.seq = run_id, seq

    def event(self, kind: str, payload: dict[str, Any], **narrow: Any) -> None:
        """Record an event; log it too (`quiet=True`: at info level, for what the caller of the
        run is shown anyway, so a terminal does not print one failure three times)."""
        quiet = bool(narrow.pop("quiet", False))
        self.seq += 1
        text = self.recorder.event(self.run_id, self.seq, kind, payload, self.redact, **narrow)
        if kind in _TRAIL:
            self.trail.append(Step(kind, json.loads(text)))
        if self.listener is not None:
            self.listener(kind, json.loads(text))
        level = _LOG_LEVELS.get(kind)
        if level is not None and quiet:
            level = logging.INFO
        if level is not None:
            from afctl.logs import event, logger

            if logger.isEnabledFor(level):
                event(level, self.redact(_log_line(kind, payload, narrow)), event=kind, **narrow)

    def announce(self, kind: str, payload: dict[str, Any]) -> None:
        """Tell the listener of something under way that is recorded later (a tool call
        starting), redacted like a recorded event."""
        if self.listener is not None:
            self.listener(kind, json.loads(self.redact(json.dumps(payload, default=str))))


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

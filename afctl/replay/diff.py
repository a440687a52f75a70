"""Comparing two runs step by step (`afctl diff-runs`, and after a live replay): their inputs
and variables, the model parameters they were asked with, the output as a word diff, the
tool-call sequences and their arguments, handoffs, guardrail decisions, a workflow's steps
one by one, and the deltas of tokens, cost and latency. Any two runs can be compared; they
differ when anything but the measurements (tokens, cost, latency) does."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any

from afctl.promptlog.store import EventRecord, RunRecord


@dataclass
class Side:
    record: RunRecord
    output: str | None
    events: list[EventRecord]
    input: Any = None
    variables: dict[str, Any] = field(default_factory=dict)

    def params(self) -> list[dict[str, Any]]:
        """The parameters of each model call, in order (a replay with --set changes them)."""
        return [dict((e.payload.get("request") or {}).get("params") or {})
                for e in self.events if e.type == "model_call"]  # fmt: skip

    def steps(self) -> dict[str, dict[str, Any]]:
        """A workflow's steps by id: status, output, error."""
        return {str(e.payload.get("id")): {k: e.payload.get(k) for k in
                                           ("status", "output", "error")}
                for e in self.events if e.type == "step"}  # fmt: skip

    def tool_calls(self) -> list[tuple[int, str, Any, str]]:
        """(turn, name, arguments, status) in order."""
        return [(e.turn or 0, e.payload.get("name", e.tool or ""), e.payload.get("arguments"),
                 e.status or "") for e in self.events if e.type == "tool_call"]  # fmt: skip

    def handoffs(self) -> list[str]:
        return [f"{e.payload.get('from')} → {e.payload.get('to')}" for e in self.events
                if e.type == "handoff"]  # fmt: skip

    def guardrails(self) -> list[str]:
        return [f"{e.payload.get('stage')}: {e.payload.get('status')}" for e in self.events
                if e.type == "guardrail"]  # fmt: skip


@dataclass
class RunDiff:
    a: str
    b: str
    same_output: bool
    output_diff: list[str]
    """Words: `-word` only in A, `+word` only in B, `word` in both."""
    tools_a: list[str]
    tools_b: list[str]
    argument_changes: list[dict[str, Any]] = field(default_factory=list)
    handoffs_a: list[str] = field(default_factory=list)
    handoffs_b: list[str] = field(default_factory=list)
    guardrails_a: list[str] = field(default_factory=list)
    guardrails_b: list[str] = field(default_factory=list)
    deltas: dict[str, Any] = field(default_factory=dict)
    inputs: dict[str, Any] | None = None
    """{a, b} when the inputs (or variables) differ."""
    params: dict[str, Any] | None = None
    """{a, b} when the model calls were asked with other parameters."""
    step_changes: list[dict[str, Any]] = field(default_factory=list)
    """A workflow's steps that differ: {step, a, b} (each status, output, error)."""

    @property
    def identical_trajectory(self) -> bool:
        return (
            self.same_output
            and self.tools_a == self.tools_b
            and not self.argument_changes
            and self.handoffs_a == self.handoffs_b
            and self.guardrails_a == self.guardrails_b
            and not self.step_changes
        )

    @property
    def identical(self) -> bool:
        """Nothing but the measurements (tokens, cost, latency) differs."""
        status, model = self.deltas.get("status") or {}, self.deltas.get("model") or {}
        return (
            self.identical_trajectory
            and self.inputs is None
            and self.params is None
            and status.get("a") == status.get("b")
            and model.get("a") == model.get("b")
        )

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "identical_trajectory": self.identical_trajectory,
                "identical": self.identical}  # fmt: skip


def word_diff(a: str, b: str) -> list[str]:
    left, right = a.split(), b.split()
    out: list[str] = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(
        a=left, b=right, autojunk=False
    ).get_opcodes():
        if op == "equal":
            out.extend(left[i1:i2])
        else:
            out.extend(f"-{w}" for w in left[i1:i2])
            out.extend(f"+{w}" for w in right[j1:j2])
    return out


def _delta(a: float | None, b: float | None) -> dict[str, Any]:
    change = None if a is None or b is None else round(b - a, 6)
    return {"a": a, "b": b, "change": change}


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def diff_runs(a: Side, b: Side) -> RunDiff:
    calls_a, calls_b = a.tool_calls(), b.tool_calls()
    changes = []
    for index, (left, right) in enumerate(zip(calls_a, calls_b, strict=False)):
        if left[1] == right[1] and left[2] != right[2]:
            changes.append({"step": index + 1, "tool": left[1], "a": left[2], "b": right[2]})
    ra, rb = a.record, b.record
    tokens_a = (ra.input_tokens or 0) + (ra.output_tokens or 0)
    tokens_b = (rb.input_tokens or 0) + (rb.output_tokens or 0)
    given_a, given_b = (a.input, a.variables), (b.input, b.variables)
    params_a, params_b = a.params(), b.params()
    steps_a, steps_b = a.steps(), b.steps()
    step_changes = [
        {"step": step, "a": steps_a.get(step), "b": steps_b.get(step)}
        for step in sorted(set(steps_a) | set(steps_b))
        if steps_a.get(step) != steps_b.get(step)
    ]
    diff = RunDiff(
        ra.id,
        rb.id,
        (a.output or "") == (b.output or ""),
        word_diff(a.output or "", b.output or ""),
        [c[1] for c in calls_a],
        [c[1] for c in calls_b],
        changes,
        a.handoffs(),
        b.handoffs(),
        a.guardrails(),
        b.guardrails(),
        {
            "status": {"a": ra.status, "b": rb.status},
            "model": {"a": ra.model, "b": rb.model},
            "turns": _delta(ra.turns, rb.turns),
            "tokens": _delta(tokens_a, tokens_b),
            "cost_usd": _delta(ra.cost_usd, rb.cost_usd),
            "latency_ms": _delta(_rounded(ra.latency_ms), _rounded(rb.latency_ms)),
        },
    )
    if given_a != given_b:
        diff.inputs = {"a": {"input": a.input, "vars": a.variables},
                       "b": {"input": b.input, "vars": b.variables}}  # fmt: skip
    if params_a != params_b:
        diff.params = {"a": params_a, "b": params_b}
    diff.step_changes = step_changes
    return diff

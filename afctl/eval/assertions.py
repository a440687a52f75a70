"""Assertions on a case's outcome. Each type has a `not_` form that passes when the check
fails; a check that cannot be made (bad JSON for json_path, a python check that raises) fails
with its reason."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from afctl.errors import RunError, UsageError
from afctl.manifests.checks import BUILTIN_ASSERTIONS as BUILTIN_ASSERTIONS
from afctl.manifests.checks import known_assertion as known_assertion
from afctl.safety.capabilities import Grant

OF_OUTPUT = frozenset({"equals", "contains", "icontains", "contains_any", "contains_all",
                       "starts_with", "regex", "is_json", "json_schema", "json_path", "similar",
                       "llm_judge"})  # fmt: skip
"""Assertions about the answer: without one (the run failed), they fail, `not_` forms too."""
MODEL_CHECKS = frozenset({"similar", "llm_judge"})
"""Assertions that ask a model (a judge, or an embeddings endpoint): checked asynchronously."""
DEFAULT_SIMILARITY = 0.8
DEFAULT_JUDGE_THRESHOLD = 0.5


class ModelServices(Protocol):
    """What model-based assertions need from the eval's run."""

    default_judge: str | None

    async def judge(self, model: str, instructions: str, text: str) -> str: ...

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]: ...


async def check_with_model(
    assertion: dict[str, Any], outcome: Outcome, services: ModelServices
) -> Checked:
    """An llm_judge or similar assertion (and their not_ forms)."""
    base = str(assertion["type"]).removeprefix("not_")
    if not outcome.answered:
        return _unanswered(assertion, outcome)
    try:
        if base == "llm_judge":
            from afctl.runtime.guardrails import JUDGE_INSTRUCTIONS, judge_verdict

            model = assertion.get("model") or services.default_judge
            if not model:
                raise RunError("an llm_judge assertion needs a model (or the suite's `judge`)")
            prompt = f"Rubric: {assertion['rubric']}\n\nText:\n{outcome.output}"
            score, why = judge_verdict(await services.judge(str(model), JUDGE_INSTRUCTIONS, prompt))
            threshold = float(assertion.get("threshold", DEFAULT_JUDGE_THRESHOLD))
            held, reason = score >= threshold, f"judge score {score:g} (needs {threshold:g}): {why}"
        else:
            import math

            model = str(assertion.get("model") or "local/hashing")
            value = _render(str(assertion["value"]), outcome)
            first, second = await services.embed(model, [outcome.output, value])
            norm = math.sqrt(sum(x * x for x in first)) * math.sqrt(sum(x * x for x in second))
            similarity = sum(x * y for x, y in zip(first, second, strict=True)) / (norm or 1.0)
            threshold = float(assertion.get("threshold", DEFAULT_SIMILARITY))
            held = similarity >= threshold
            reason = f"cosine similarity {similarity:.3f} (needs {threshold:g})"
    except (RunError, ValueError, TypeError, KeyError) as exc:
        return _checked(assertion, None, f"could not check: {exc}")
    return _checked(assertion, held, reason, keep_reason=True)


def _checked(
    assertion: dict[str, Any], held: bool | None, reason: str | None, keep_reason: bool = False
) -> Checked:
    """The verdict of an assertion whose check `held` (None: it could not be made), with its
    `not_` form applied. The reason is kept for failures (and always with `keep_reason`)."""
    kind = str(assertion["type"])
    name = str(assertion.get("name") or kind)
    weight = float(assertion.get("weight", 1))
    if held is None:
        return Checked(name, kind, False, weight, reason)
    if kind.startswith("not_"):
        passed = not held
        if keep_reason:
            return Checked(name, kind, passed, weight, reason)
        return Checked(name, kind, passed, weight, None if passed else _opposite(assertion, reason))
    return Checked(name, kind, held, weight, reason if keep_reason or not held else None)


def _opposite(assertion: dict[str, Any], reason: str | None) -> str:
    """Why a `not_` assertion failed: what it must not find, and did."""
    base = str(assertion["type"]).removeprefix("not_")
    if base not in BUILTIN_ASSERTIONS:  # a plugin's own words
        return f"it held, and must not: {reason}" if reason else "it held, and must not"
    keys = ["value", "values", "pattern", "tool", "agent", "path"]
    if base == "tool_called":
        keys.append("name")  # the tool, for this one
    for key in keys:
        if key in assertion:
            return f"{base} {json.dumps(assertion[key], ensure_ascii=False)} held, and must not"
    return f"{base} held, and must not"


def _unanswered(assertion: dict[str, Any], outcome: Outcome) -> Checked:
    """An assertion about the answer of a run that gave none: it fails (never vacuously passes)."""
    kind = str(assertion["type"])
    return Checked(str(assertion.get("name") or kind), kind, False,
                   float(assertion.get("weight", 1)),
                   f"there is no answer to check: the run ended {outcome.status}")  # fmt: skip


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


def check(assertion: dict[str, Any], outcome: Outcome, grant: Grant | None = None) -> Checked:
    """Whether the assertion holds of the outcome. `grant`: what the suite may run (python
    checks, plugin types); without one, the suite is your own, in the current folder."""
    base = str(assertion["type"]).removeprefix("not_")
    if grant is None:
        grant = Grant(Path.cwd())
    if not outcome.answered and base in OF_OUTPUT:
        return _unanswered(assertion, outcome)
    try:
        if base in BUILTIN_ASSERTIONS:
            held, reason = _holds(base, assertion, outcome, grant)
        else:
            grant.plugin(base)
            held, reason = _plugin_check(base, assertion, outcome)
    except (RunError, ValueError, TypeError, KeyError) as exc:
        return _checked(assertion, None, f"could not check: {exc}")
    return _checked(assertion, held, reason)


def _plugin_check(base: str, a: dict[str, Any], o: Outcome) -> tuple[bool, str | None]:
    from afctl.plugins import assertion_types

    function = assertion_types().get(base)
    if function is None:
        raise UsageError(f"unknown assertion type {base!r}")
    try:
        verdict = function(dict(a), o)
    except Exception as exc:  # a plugin's own bug fails its assertion, with the reason
        raise ValueError(f"the {base} plugin failed: {type(exc).__name__}: {exc}") from None
    return _verdict(verdict, f"{base} did not hold")


def _verdict(verdict: Any, otherwise: str) -> tuple[bool, str | None]:
    """A check function's answer: a bool, or (bool, reason)."""
    if isinstance(verdict, tuple):
        return bool(verdict[0]), str(verdict[1]) if len(verdict) > 1 else otherwise
    return bool(verdict), otherwise


def _render(text: str, outcome: Outcome) -> str:
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


def _holds(base: str, a: dict[str, Any], o: Outcome, grant: Grant) -> tuple[bool, str | None]:
    out = o.output
    if base == "equals":
        value = _render(str(a["value"]), o)
        return out.strip() == value.strip(), f"the output is {out[:200]!r}"
    if base in ("contains", "icontains", "starts_with"):
        value = _render(str(a["value"]), o)
        if base == "icontains":
            return value.lower() in out.lower(), f"{value!r} is not in the output"
        if base == "starts_with":
            return out.startswith(value), f"the output starts {out[:60]!r}"
        return value in out, f"{value!r} is not in the output"
    if base in ("contains_any", "contains_all"):
        values = [str(v) for v in a["values"]]
        text = out.lower() if a.get("ignore_case") else out
        found = [v for v in values if (v.lower() if a.get("ignore_case") else v) in text]
        if base == "contains_any":
            return bool(found), "none of them is in the output"
        missing = [v for v in values if v not in found]
        return not missing, f"missing: {', '.join(map(repr, missing))}"
    if base == "regex":
        from afctl.safety.regex import search

        return search(str(a["pattern"]), out), "the pattern does not match"
    if base == "is_json":
        try:
            json.loads(out)
        except ValueError:
            return False, "the output is not JSON"
        return True, "the output is JSON"
    if base == "json_schema":
        from afctl.tools.base import Validator, json_problems

        problems = json_problems(out, Validator(a["schema"]))
        return not problems, "; ".join(problems)
    if base == "json_path":
        from afctl.tools.http_tool import pointer

        value = pointer(json.loads(out), str(a["path"]))
        if "value" not in a:
            return True, f"{a['path']} is {value!r}"
        return value == a["value"], f"{a['path']} is {value!r}"
    if base in ("tool_called", "tool_args"):
        tool = str(a.get("tool") or a["name"])  # `name` alone: the tool, as it used to be
        calls = [args for name, args in o.tool_calls if name == tool]
        wanted = a.get("args") or {}
        matching = [c for c in calls if all(c.get(k) == v for k, v in wanted.items())]
        if not calls:
            return False, f"{tool} was not called"
        return bool(matching), f"{tool} was called with {calls}"
    if base == "tool_sequence":
        names = [name for name, _ in o.tool_calls]
        sequence = [str(s) for s in a["sequence"]]
        if a.get("exact"):
            return names == sequence, f"the calls were {names}"
        position = 0
        for name in names:  # in order, others may come between
            if position < len(sequence) and name == sequence[position]:
                position += 1
        return position == len(sequence), f"the calls were {names}"
    if base == "handoff_to":
        return a["agent"] in o.handoffs, f"handoffs: {o.handoffs or 'none'}"
    if base == "guardrail_blocked":
        wanted_name = a.get("guardrail")
        held = bool(o.blocked_by) and (wanted_name is None or wanted_name in o.blocked_by)
        return held, f"blocked by: {o.blocked_by or 'nothing'}"
    if base == "latency":
        return o.latency_ms <= float(a["max_ms"]), f"it took {o.latency_ms:.0f} ms"
    if base == "cost":
        if o.cost_usd is None:
            return False, "the cost is unknown"
        return o.cost_usd <= float(a["max_usd"]), f"it cost ${o.cost_usd:.6f}"
    if base == "tokens":
        if o.tokens is None:
            return False, "the provider did not report the tokens used"
        return o.tokens <= int(a["max"]), f"it used {o.tokens} tokens"
    if base == "expression":
        from afctl.safety.expr import ExpressionError, truthy

        context = {
            "output": o.output,
            "vars": o.vars,
            "status": o.status,
            "tools": [{"name": n, "args": args} for n, args in o.tool_calls],
            "handoffs": list(o.handoffs),
            "latency_ms": o.latency_ms,
            "tokens": o.tokens,
            "cost_usd": o.cost_usd,
        }
        try:
            return truthy(str(a["expr"]), context), f"{a['expr']} is false"
        except ExpressionError as exc:
            raise ValueError(exc.message) from None
    if base == "python":
        from afctl.tools.python_tool import import_entrypoint

        entrypoint = str(a["entrypoint"])
        function = import_entrypoint(entrypoint, grant.python(entrypoint))
        try:
            verdict = function(o.output, {"vars": o.vars, "config": a.get("config") or {},
                                          "tools": o.tool_calls, "status": o.status})  # fmt: skip
        except Exception as exc:  # the user's check failing fails the assertion, saying why
            raise ValueError(f"{a['entrypoint']} raised {type(exc).__name__}: {exc}") from None
        return _verdict(verdict, f"{a['entrypoint']} said no")
    raise UsageError(f"{base} assertions ask a model: check them with check_with_model")

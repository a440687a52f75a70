"""Assertions on a case's outcome. Each type has a `not_` form that passes when the check
fails; a check that cannot be made (bad JSON for json_path, a python check that raises) fails
with its reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from afctl.errors import RunError, UsageError
from afctl.eval.outcome import Checked as Checked
from afctl.eval.outcome import Outcome as Outcome
from afctl.eval.outcome import render_value, verdict_of
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
            value = render_value(str(assertion["value"]), outcome)
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


def check(assertion: dict[str, Any], outcome: Outcome, grant: Grant | None = None) -> Checked:
    """Whether the assertion holds of the outcome. `grant`: what the suite may run (python
    checks, plugin types); without one, the suite is your own, in the current folder."""
    from afctl.eval.builtin_assertions import BUILTIN
    from afctl.plugins import assertion_types

    base = str(assertion["type"]).removeprefix("not_")
    if grant is None:
        grant = Grant(Path.cwd())
    if not outcome.answered and base in OF_OUTPUT:
        return _unanswered(assertion, outcome)
    try:
        function = assertion_types().get(base)
        if function is None:
            if base in MODEL_CHECKS:
                raise UsageError(f"{base} assertions ask a model: check them with check_with_model")
            raise UsageError(f"unknown assertion type {base!r}")
        own = BUILTIN.get(base)
        if own is not None and function is own:  # afctl's own, not a plugin's of that name
            held, reason = own(assertion, outcome, grant)
        else:
            grant.plugin(base)
            held, reason = _plugin_check(base, function, assertion, outcome)
    except (RunError, ValueError, TypeError, KeyError) as exc:
        return _checked(assertion, None, f"could not check: {exc}")
    return _checked(assertion, held, reason)


def _plugin_check(
    base: str, function: Any, a: dict[str, Any], o: Outcome
) -> tuple[bool, str | None]:
    try:
        verdict = function(dict(a), o)
    except Exception as exc:  # a plugin's own bug fails its assertion, with the reason
        raise ValueError(f"the {base} plugin failed: {type(exc).__name__}: {exc}") from None
    return verdict_of(verdict, f"{base} did not hold")

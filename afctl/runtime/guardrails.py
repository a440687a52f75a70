"""Guardrails: checks on an agent's input (before any model or tool call) and on its output
(before it is returned or stored).

Each guardrail decides `pass` or trips; a tripped one acts by its `action`: `block` ends the
run with status `blocked`, `redact` masks what it found (later guardrails see the masked text),
`warn` only records it. Guardrails run in order and the first block stops the rest. Anything
that goes wrong inside a guardrail (a python check that raises, a judge that does not answer)
blocks: a guardrail fails closed.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from afctl.errors import RunError
from afctl.providers.types import ProviderError
from afctl.safety import pii
from afctl.safety.capabilities import Grant
from afctl.safety.secrets import REDACTED, Secrets

DEFAULT_THRESHOLD = 0.5
JUDGE_INSTRUCTIONS = (
    "You check a text against a rubric. Reply with only a JSON object: "
    '{"score": <a number from 0 (fails the rubric) to 1 (meets it fully)>, '
    '"reason": "<one sentence>"}.'
)

Judge = Callable[[str, str, str], Awaitable[str]]
"""Asks a model (reference, instructions, text) and returns its answer."""


@dataclass(frozen=True)
class Decision:
    name: str
    type: str
    action: str
    tripped: bool
    reason: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {"name": self.name, "type": self.type, "action": self.action,
                "tripped": self.tripped, "reason": self.reason}  # fmt: skip
        return {**data, **self.details} if self.details else data


@dataclass
class Outcome:
    text: str
    """The text after every redaction (what the model or the user gets)."""
    decisions: list[Decision]
    blocked: Decision | None = None
    message: str | None = None
    """For a block: what the user is told."""

    @property
    def status(self) -> str:
        if self.blocked is not None:
            return "blocked"
        tripped = [d for d in self.decisions if d.tripped]
        if any(d.action == "redact" for d in tripped):
            return "redacted"
        return "warned" if tripped else "passed"

    def to_dict(self, stage: str) -> dict[str, Any]:
        return {"stage": stage, "status": self.status,
                "decisions": [d.to_dict() for d in self.decisions]}  # fmt: skip


@dataclass
class Checks:
    """What guardrails may use from the run."""

    secrets: Secrets
    grant: Grant
    """What the agent whose guardrails these are may do (which python may run)."""
    judge: Judge | None = None


async def run_guardrails(
    guardrails: list[dict[str, Any]], text: str, stage: str, checks: Checks
) -> Outcome:
    """Run `guardrails` over `text` in order.

    Raises:
        RunError: a guardrail is misconfigured (a python entrypoint that cannot be imported).
    """
    decisions: list[Decision] = []
    for index, guardrail in enumerate(guardrails):
        kind = str(guardrail.get("type"))
        name = str(guardrail.get("name") or f"{stage}[{index}] {kind}")
        action = str(guardrail.get("action", "block"))
        try:
            tripped, reason, replacement, details = await _check(
                kind, guardrail, text, stage, checks
            )
        except ProviderError as exc:  # the judge did not answer: fail closed
            tripped, reason, replacement, details = True, exc.message, None, {}
            action = "block"
        except RunError:
            raise
        except Exception as exc:  # fail closed
            tripped, reason, replacement, details = True, f"{type(exc).__name__}: {exc}", None, {}
            action = "block"
        decision = Decision(name, kind, action, tripped, reason, details)
        decisions.append(decision)
        if not tripped or action == "warn":
            continue
        if action == "redact" and replacement is not None:
            text = replacement
            continue
        message = guardrail.get("message") or f"Blocked by guardrail {name}."
        masked = replacement if kind in ("pii", "secrets") and replacement is not None else text
        return Outcome(masked, decisions, decision, str(message))
    return Outcome(text, decisions)


Check = tuple[bool, str | None, str | None, dict[str, Any]]
"""(tripped, reason, the text with what was found masked (None: cannot redact), details)."""


async def _check(
    kind: str, guardrail: dict[str, Any], text: str, stage: str, checks: Checks
) -> Check:
    if kind == "max_length":
        limit = int(guardrail["max"])
        over = len(text) > limit
        return over, f"{len(text)} characters, over {limit}" if over else None, text[:limit], {}
    if kind in ("deny_regex", "allow_regex"):
        from afctl.safety.regex import compile_pattern

        pattern = compile_pattern(str(guardrail["pattern"]))
        found = pattern.search(text)
        if kind == "allow_regex":
            return found is None, None if found else "the text does not match", None, {}
        masked = pattern.sub(REDACTED, text) if found else None
        return found is not None, "matches a denied pattern" if found else None, masked, {}
    if kind == "pii":
        hits = pii.find(text, guardrail.get("detect") or pii.KINDS)
        kinds = sorted({hit.kind for hit in hits})
        reason = "found " + ", ".join(kinds) if hits else None
        return bool(hits), reason, pii.mask(text, hits), {"found": kinds} if hits else {}
    if kind == "secrets":
        masked = checks.secrets.redact(text)
        tripped = masked != text
        return tripped, "found a secret or an API key" if tripped else None, masked, {}
    if kind == "json_schema":
        from afctl.tools.base import Validator, json_problems

        problems = json_problems(text, Validator(guardrail["schema"]))
        return bool(problems), "; ".join(problems) or None, None, {}
    if kind == "python":
        return await _python(str(guardrail["entrypoint"]), text, stage, checks.grant)
    if kind == "llm_judge":
        return await _judge(guardrail, text, checks)
    raise RunError(f"unknown guardrail type {kind!r}")


async def _python(entrypoint: str, text: str, stage: str, grant: Grant) -> Check:
    """`fn(text)` (or `fn(text, stage)`) returns `allow`, `block` or `redact`, or a dict with
    `action`, `reason` and (for redact) `text`. The grant decides first whether it may run.

    Raises:
        CapabilityDenied: the agent may not run this python.
    """
    from afctl.tools.python_tool import import_entrypoint

    function = import_entrypoint(entrypoint, grant.python(entrypoint))
    arguments: dict[str, Any] = {}
    if "stage" in inspect.signature(function).parameters:
        arguments["stage"] = stage
    if inspect.iscoroutinefunction(function):
        verdict = await function(text, **arguments)
    else:
        verdict = await asyncio.to_thread(function, text, **arguments)
    if isinstance(verdict, str):
        verdict = {"action": verdict}
    if not isinstance(verdict, dict) or verdict.get("action") not in ("allow", "block", "redact"):
        raise ValueError(f"{entrypoint} must return allow, block or redact, not {verdict!r}")
    reason = verdict.get("reason")
    if verdict["action"] == "allow":
        return False, reason, None, {}
    replacement = verdict.get("text") if verdict["action"] == "redact" else None
    if verdict["action"] == "redact" and not isinstance(replacement, str):
        raise ValueError(f"{entrypoint} returned redact without the redacted text")
    return True, reason or f"{entrypoint} said {verdict['action']}", replacement, {}


def judge_verdict(answer: str) -> tuple[float, str]:
    """(score, reason) from a judge model's answer (JSON, perhaps inside other text).

    Raises:
        ValueError: the answer has no score.
    """
    match = re.search(r"\{.*\}", answer, re.S)
    try:
        verdict = json.loads(match[0] if match else answer)
        return float(verdict["score"]), str(verdict.get("reason") or "")
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"the judge did not answer with a score: {answer[:200]!r}") from None


async def _judge(guardrail: dict[str, Any], text: str, checks: Checks) -> Check:
    if checks.judge is None:
        raise RunError("llm_judge guardrails need a model to judge with")
    prompt = f"Rubric: {guardrail['rubric']}\n\nText:\n{text}"
    answer = await checks.judge(str(guardrail["model"]), JUDGE_INSTRUCTIONS, prompt)
    score, reason = judge_verdict(answer)
    threshold = float(guardrail.get("threshold", DEFAULT_THRESHOLD))
    details = {"score": score, "threshold": threshold, "judge_reason": reason}
    return score < threshold, f"score {score:g} below {threshold:g}: {reason}", None, details

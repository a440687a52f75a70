"""Running a suite: every case is a normal run in the prompt log (replayable), linked to the
eval by `eval_id`; cases run concurrently up to the suite's `concurrency`, sharing the
providers' connections; each case is scored by its assertions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from afctl.eval.assertions import (
    MODEL_CHECKS,
    Checked,
    ModelServices,
    Outcome,
    check,
    check_with_model,
)
from afctl.eval.suite import Case, Suite, Variant
from afctl.ids import new_ulid, utc_now
from afctl.promptlog.cache import ResponseCache
from afctl.safety.capabilities import Grant
from afctl.safety.secrets import redact_known


def wilson(passes: int, runs: int, z: float = 1.96) -> tuple[float, float]:
    """The 95% Wilson score interval of a pass rate."""
    import math

    if runs == 0:
        return 0.0, 1.0
    rate = passes / runs
    centre = rate + z * z / (2 * runs)
    spread = z * math.sqrt(rate * (1 - rate) / runs + z * z / (4 * runs * runs))
    denominator = 1 + z * z / runs
    return max(0.0, (centre - spread) / denominator), min(1.0, (centre + spread) / denominator)


RUN_ERRORS = frozenset({"provider", "config", "interrupted", "input"})
"""Why a run may not answer that says nothing of the agent: the provider failed, a resource
or key is missing, it was interrupted, or the case's input does not fit. Such a case is an
error, not a failure."""


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation; None for no values."""
    import math

    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class CaseResult:
    case_id: str
    run_id: str
    passed: bool
    score: float
    status: str
    output: str | None
    latency_ms: float
    cost_usd: float | None
    assertions: list[Checked] = field(default_factory=list)
    error: str | None = None
    variant: str = "default"
    repeat: int = 0
    errored: bool = False
    """The run could not answer (provider, configuration, timeout): an error, not a failure;
    its assertions were not checked."""

    @property
    def outcome(self) -> str:
        return "error" if self.errored else "pass" if self.passed else "fail"

    def to_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["assertions"] = [a.to_dict() for a in self.assertions]
        data["outcome"] = self.outcome
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CaseResult:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["assertions"] = [Checked(**a) for a in data.get("assertions") or []]
        return cls(**fields)


@dataclass
class EvalResult:
    eval_id: str
    suite: str
    agent: str
    cases: list[CaseResult]
    pass_rate_required: float
    seconds: float
    variant_pass_rate_required: float | None = None
    repeat: int = 1
    comparison: dict[str, Any] | None = None
    """Against a baseline eval: its id, regressions and fixes (by case and variant)."""
    max_error_rate: float = 0.0
    cache: dict[str, Any] | None = None
    """Response cache hits and misses; with --explain-cache, each miss and why."""
    started_at: str = field(default_factory=utc_now)

    def compare(self, baseline_id: str, earlier: dict[tuple[str, str], list[bool]]) -> None:
        """Pair this eval's results with an earlier one's: a case and variant that passed
        every repeat there and not here is a regression; the other way round, a fix."""
        now: dict[tuple[str, str], list[bool]] = {}
        for case in self.cases:
            now.setdefault((case.case_id, case.variant), []).append(case.passed)
        regressions, fixes = [], []
        for key, outcomes in sorted(now.items()):
            if key not in earlier:
                continue
            before, after = all(earlier[key]), all(outcomes)
            entry = {"case": key[0], "variant": key[1]}
            if before and not after:
                regressions.append(entry)
            elif after and not before:
                fixes.append(entry)
        self.comparison = {"baseline": baseline_id, "regressions": regressions, "fixes": fixes}

    @property
    def ran(self) -> list[CaseResult]:
        """The cases whose run answered (errors left out)."""
        return [c for c in self.cases if not c.errored]

    @property
    def errors(self) -> int:
        return sum(c.errored for c in self.cases)

    @property
    def error_rate(self) -> float:
        return self.errors / len(self.cases) if self.cases else 0.0

    @property
    def errored(self) -> bool:
        """Too many cases could not run for the suite to be judged (an outage)."""
        return self.error_rate > self.max_error_rate

    @property
    def pass_rate(self) -> float:
        """Passing cases among those that ran."""
        ran = self.ran
        return sum(c.passed for c in ran) / len(ran) if ran else 0.0

    def variant_rates(self) -> dict[str, float]:
        rates: dict[str, list[bool]] = {}
        for case in self.ran:
            rates.setdefault(case.variant, []).append(case.passed)
        return {variant: sum(p) / len(p) for variant, p in rates.items()}

    def case_stats(self) -> list[dict[str, Any]]:
        """Per case and variant, across repeats: passes, the pass rate with its 95% Wilson
        interval, and whether it is flaky (passed and failed)."""
        groups: dict[tuple[str, str], list[bool]] = {}
        for case in self.cases:
            groups.setdefault((case.case_id, case.variant), []).append(case.passed)
        stats = []
        for (case_id, variant), outcomes in groups.items():
            low, high = wilson(sum(outcomes), len(outcomes))
            stats.append({"case": case_id, "variant": variant, "runs": len(outcomes),
                          "passes": sum(outcomes), "pass_rate": sum(outcomes) / len(outcomes),
                          "wilson_95": [round(low, 4), round(high, 4)],
                          "flaky": 0 < sum(outcomes) < len(outcomes)})  # fmt: skip
        return stats

    @property
    def regressions(self) -> list[dict[str, Any]]:
        """Cases (and variants) that passed in the baseline and fail now."""
        return list(self.comparison["regressions"]) if self.comparison else []

    @property
    def verdict(self) -> str:
        """`error` (too many cases could not run), `fail` (below a threshold) or `pass`."""
        return "error" if self.errored else "pass" if self.passed else "fail"

    @property
    def passed(self) -> bool:
        if self.errored or not self.ran or self.pass_rate < self.pass_rate_required:
            return False
        required = self.variant_pass_rate_required
        return required is None or all(r >= required for r in self.variant_rates().values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "afctl.eval/v1",
            "eval_id": self.eval_id,
            "started_at": self.started_at,
            "suite": self.suite,
            "agent": self.agent,
            "passed": self.passed,
            "verdict": self.verdict,
            "pass_rate": round(self.pass_rate, 4),
            "errors": self.errors,
            "error_rate": round(self.error_rate, 4),
            "max_error_rate": self.max_error_rate,
            "pass_rate_required": self.pass_rate_required,
            "variant_pass_rate_required": self.variant_pass_rate_required,
            "variants": {k: round(v, 4) for k, v in self.variant_rates().items()},
            "repeat": self.repeat,
            "seconds": round(self.seconds, 3),
            "case_stats": self.case_stats(),
            "comparison": self.comparison,
            "cache": self.cache,
            "cases": [c.to_dict() for c in self.cases],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        """A result as `to_dict` gave it (a remote `afctl eval` reads the server's report);
        what `to_dict` computes is computed again from the cases."""
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        fields["cases"] = [CaseResult.from_dict(c) for c in data.get("cases") or []]
        return cls(**fields)


def cache_report(cache: ResponseCache, result: EvalResult, explain: bool) -> dict[str, Any]:
    """The cache's hits and misses in an eval; with `explain`, each miss by case and why."""
    report: dict[str, Any] = cache.summary()
    if explain:
        by_run = {c.run_id: c for c in result.cases}
        report["explained"] = [
            {"case": by_run[m.run_id].case_id, "variant": by_run[m.run_id].variant,
             "repeat": by_run[m.run_id].repeat, "turn": m.turn, "inputs": m.inputs,
             "why": m.explain()}
            for m in cache.misses if m.run_id in by_run
        ]  # fmt: skip
    return report


def score(checked: list[Checked]) -> float:
    total = sum(c.weight for c in checked)
    return sum(c.weight for c in checked if c.passed) / total if total else 1.0


async def run_suite(
    suite: Suite,
    make_run: Callable[[Case, str, Variant, int], Any],
    read_outcome: Callable[[Any, Case, Any], Outcome],
    grant: Grant | None,
    on_case: Callable[[CaseResult], None] | None = None,
    services: ModelServices | None = None,
) -> EvalResult:
    """Run every case in every variant, `repeat` times (`make_run(case, eval_id, variant,
    repeat)` gives an AgentRun; `read_outcome(agent_run, case, result)` what assertions see of
    it), `suite.concurrency` at a time, and score them."""
    # long because the per-case coroutine closes over the suite's shared state (the gate,
    # the results, the model services); split, it would pass them all around
    eval_id = new_ulid()
    started_at = utc_now()
    started = time.perf_counter()

    async def one(case: Case, variant: Variant, repeat: int) -> CaseResult:
        agent_run = make_run(case, eval_id, variant, repeat)
        text = case.input_for(variant)
        limit = float(suite.timeout_s or 0)

        def timed_out() -> CaseResult:
            return CaseResult(case.id, agent_run.run_id, False, 0.0, "timeout", None,
                              limit * 1000, None, error=f"the case took longer than {limit:g} s",
                              variant=variant.id, repeat=repeat, errored=True)  # fmt: skip

        try:
            if suite.timeout_s and not getattr(agent_run, "enforces_timeout", False):
                result = await asyncio.wait_for(agent_run.run(text), suite.timeout_s)
            else:
                result = await agent_run.run(text)
        except TimeoutError:
            return timed_out()
        if result.error_type == "timeout":  # a worker stopped it at the limit
            return timed_out()
        outcome = read_outcome(agent_run, case, result)
        outcome.vars = case.vars_for(variant)
        checked = []
        errored = result.error_type in RUN_ERRORS
        for assertion in [] if errored else case.assertions:  # a run that never answered
            if str(assertion["type"]).removeprefix("not_") in MODEL_CHECKS and services:
                checked.append(await check_with_model(assertion, outcome, services))
            else:
                checked.append(check(assertion, outcome, grant))
        case_score = score(checked)
        expects_block = any(
            a["type"].removeprefix("not_") == "guardrail_blocked" for a in case.assertions
        )
        passed = not errored and case_score >= case.threshold and (result.ok or expects_block)
        # reports, logs.db and the terminal get no secret a model echoed, nor a judge's quote
        checked = [replace(c, reason=redact_known(c.reason)) if c.reason else c for c in checked]
        output = None if result.output is None else redact_known(result.output)
        error = None if result.error is None else redact_known(result.error)
        done = CaseResult(case.id, result.run_id, passed, 0.0 if errored else case_score,
                          result.status, output, result.latency_ms, result.cost_usd, checked,
                          error, variant.id, repeat, errored)  # fmt: skip
        if on_case is not None:
            on_case(done)
        return done

    # `concurrency` workers take the next case from one queue: memory stays flat however many
    # cases there are (no task per case waiting its turn), and results keep the suite's order
    work = enumerate(
        (case, variant, repeat)
        for variant in suite.variants
        for case in suite.cases
        for repeat in range(suite.repeat)
    )
    total = len(suite.variants) * len(suite.cases) * suite.repeat
    results: list[CaseResult | None] = [None] * total

    async def worker() -> None:
        for index, (case, variant, repeat) in work:
            results[index] = await one(case, variant, repeat)

    await asyncio.gather(*(worker() for _ in range(min(suite.concurrency, total))))
    return EvalResult(
        eval_id, suite.name, suite.subject, [r for r in results if r is not None], suite.pass_rate,
        time.perf_counter() - started, suite.variant_pass_rate, suite.repeat,
        started_at=started_at, max_error_rate=suite.max_error_rate,
    )  # fmt: skip

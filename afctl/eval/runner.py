"""Running a suite: every case is a normal run in the prompt log (replayable), linked to the
eval by `eval_id`; cases run concurrently up to the suite's `concurrency`, sharing the
providers' connections; each case is scored by its assertions."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from afctl.eval.assertions import Checked, Outcome, check
from afctl.eval.suite import Case, Suite
from afctl.ids import new_ulid


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

    def to_dict(self) -> dict[str, Any]:
        data = dict(vars(self))
        data["assertions"] = [a.to_dict() for a in self.assertions]
        return data


@dataclass
class EvalResult:
    eval_id: str
    suite: str
    agent: str
    cases: list[CaseResult]
    pass_rate_required: float
    seconds: float

    @property
    def pass_rate(self) -> float:
        return sum(c.passed for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def passed(self) -> bool:
        return self.pass_rate >= self.pass_rate_required

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "afctl.eval/v1",
            "eval_id": self.eval_id,
            "suite": self.suite,
            "agent": self.agent,
            "passed": self.passed,
            "pass_rate": round(self.pass_rate, 4),
            "pass_rate_required": self.pass_rate_required,
            "seconds": round(self.seconds, 3),
            "cases": [c.to_dict() for c in self.cases],
        }


def score(checked: list[Checked]) -> float:
    total = sum(c.weight for c in checked)
    return sum(c.weight for c in checked if c.passed) / total if total else 1.0


async def run_suite(
    suite: Suite,
    make_run: Callable[[Case, str], Any],
    read_outcome: Callable[[str, Case, Any], Outcome],
    root: Any,
    on_case: Callable[[CaseResult], None] | None = None,
) -> EvalResult:
    """Run every case (`make_run(case, eval_id)` gives an AgentRun), at most
    `suite.concurrency` at a time, and score them."""
    eval_id = new_ulid()
    started = time.perf_counter()
    gate = asyncio.Semaphore(suite.concurrency)

    async def one(case: Case) -> CaseResult:
        async with gate:
            agent_run = make_run(case, eval_id)
            try:
                if suite.timeout_s:
                    result = await asyncio.wait_for(agent_run.run(case.input), suite.timeout_s)
                else:
                    result = await agent_run.run(case.input)
            except TimeoutError:
                limit = float(suite.timeout_s or 0)
                return CaseResult(
                    case.id,
                    agent_run.run_id,
                    False,
                    0.0,
                    "timeout",
                    None,
                    limit * 1000,
                    None,
                    error=f"the case took longer than {limit:g} s",
                )
        outcome = read_outcome(result.run_id, case, result)
        checked = [check(a, outcome, root) for a in case.assertions]
        case_score = score(checked)
        expects_block = any(
            a["type"].removeprefix("not_") == "guardrail_blocked" for a in case.assertions
        )
        passed = case_score >= case.threshold and (result.ok or expects_block)
        done = CaseResult(case.id, result.run_id, passed, case_score, result.status,
                          result.output, result.latency_ms, result.cost_usd, checked,
                          result.error)  # fmt: skip
        if on_case is not None:
            on_case(done)
        return done

    results = await asyncio.gather(*(one(case) for case in suite.cases))
    return EvalResult(
        eval_id, suite.name, suite.agent, list(results), suite.pass_rate,
        time.perf_counter() - started,
    )  # fmt: skip

"""Load tests: drive a suite's agent at rising concurrency and see where it stops scaling.

At each step of the ramp, `concurrency` workers start runs one after another for `duration`
seconds, cycling through the suite's cases and variants (no response cache: every run reaches
the model). A step reports its throughput (finished runs per second), latency percentiles,
time to first token (runs stream), and its error and timeout rates. The knee is the last
concurrency that still raised throughput by KNEE_GAIN over the step before it.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from afctl.eval.runner import percentile
from afctl.eval.suite import Case, Suite, Variant
from afctl.ids import new_ulid
from afctl.providers.types import OnText

KNEE_GAIN = 1.10
"""A step must beat the one before by 10% in throughput to count as still growing."""
DEFAULT_TIMEOUT_S = 60.0


@dataclass
class StressStep:
    concurrency: int
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    ttft_ms: list[float] = field(default_factory=list)
    errors: int = 0
    timeouts: int = 0

    @property
    def runs(self) -> int:
        return len(self.latencies_ms) + self.timeouts

    @property
    def throughput(self) -> float:
        """Runs finished (successfully) per second."""
        ok = len(self.latencies_ms) - self.errors
        return ok / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        def ms(value: float | None) -> float | None:
            return None if value is None else round(value, 1)

        runs = self.runs or 1
        return {
            "concurrency": self.concurrency,
            "runs": self.runs,
            "seconds": round(self.seconds, 3),
            "throughput_per_s": round(self.throughput, 3),
            "latency_ms": {f"p{q}": ms(percentile(self.latencies_ms, q / 100))
                           for q in (50, 95, 99)},
            "ttft_ms": {f"p{q}": ms(percentile(self.ttft_ms, q / 100)) for q in (50, 95)},
            "error_rate": round(self.errors / runs, 4),
            "timeout_rate": round(self.timeouts / runs, 4),
        }  # fmt: skip


@dataclass
class StressReport:
    stress_id: str
    suite: str
    agent: str
    steps: list[StressStep]

    @property
    def knee(self) -> int | None:
        """The concurrency past which throughput stopped growing (None: it grew to the end)."""
        for before, after in itertools.pairwise(self.steps):
            if after.throughput < before.throughput * KNEE_GAIN:
                return before.concurrency
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "afctl.stress/v1",
            "stress_id": self.stress_id,
            "suite": self.suite,
            "agent": self.agent,
            "knee_concurrency": self.knee,
            "steps": [s.to_dict() for s in self.steps],
        }


async def stress(
    suite: Suite,
    make_run: Callable[[Case, Variant, str, OnText], Any],
    ramp: list[int],
    duration_s: float,
    on_step: Callable[[StressStep], None] | None = None,
) -> StressReport:
    """Drive `make_run(case, variant, stress_id, on_text)` runs at each concurrency of `ramp`
    for `duration_s` each; runs are tagged with the stress id as their eval."""
    stress_id = new_ulid()
    inputs = itertools.cycle([(c, v) for v in suite.variants for c in suite.cases])
    timeout = float(suite.timeout_s or DEFAULT_TIMEOUT_S)
    steps = []
    for concurrency in ramp:
        step = StressStep(concurrency)
        started = time.perf_counter()
        deadline = started + duration_s

        async def worker(step: StressStep = step, deadline: float = deadline) -> None:
            while time.perf_counter() < deadline:
                case, variant = next(inputs)
                began = time.perf_counter()
                first: list[float] = []

                def on_text(_: str, first: list[float] = first) -> None:
                    if not first:
                        first.append(time.perf_counter())

                agent_run = make_run(case, variant, stress_id, on_text)
                try:
                    result = await asyncio.wait_for(agent_run.run(case.input_for(variant)), timeout)
                except TimeoutError:
                    step.timeouts += 1
                    continue
                step.latencies_ms.append((time.perf_counter() - began) * 1000)
                if first:
                    step.ttft_ms.append((first[0] - began) * 1000)
                if not result.ok:
                    step.errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        step.seconds = time.perf_counter() - started
        steps.append(step)
        if on_step is not None:
            on_step(step)
    return StressReport(stress_id, suite.name, suite.subject, steps)


def parse_ramp(text: str) -> list[int]:
    """`1,4,16,64` as rising concurrencies.

    Raises:
        ValueError: not positive integers in rising order.
    """
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError("give rising concurrencies, like 1,4,16,64") from None
    if not levels or any(n < 1 for n in levels) or levels != sorted(set(levels)):
        raise ValueError("give rising concurrencies, like 1,4,16,64")
    return levels

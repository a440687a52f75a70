"""What one caller may take of the server: a body size, a request rate (a token bucket per
key: `rate` requests a minute, bursting to `burst`), and runs going at once."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from afctl.server.problems import Problem

MAX_BODY = 1_000_000
RATE_PER_MIN = 600
BURST = 100
MAX_RUNS_PER_KEY = 16
REQUEST_TIMEOUT_S = 300.0
"""How long a request waiting for a run waits; past it the run goes on in the background and
the answer is 202 with where to follow it."""


@dataclass
class Limits:
    max_body: int = MAX_BODY
    rate_per_min: float = RATE_PER_MIN
    burst: float = BURST
    max_runs_per_key: int = MAX_RUNS_PER_KEY
    request_timeout_s: float = REQUEST_TIMEOUT_S
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict, repr=False)
    """key -> (tokens left, when last filled)."""
    _runs: dict[str, int] = field(default_factory=dict, repr=False)

    def admit(self, key: str) -> None:
        """Take one request from `key`'s bucket.

        Raises:
            Problem: 429 with Retry-After when the bucket is empty.
        """
        if self.rate_per_min <= 0:
            return
        now = self.clock()
        per_s = self.rate_per_min / 60.0
        tokens, then = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * per_s)
        if tokens < 1.0:
            wait = math.ceil((1.0 - tokens) / per_s)
            self._buckets[key] = (tokens, now)
            raise Problem(429, f"too many requests: {self.rate_per_min:g} a minute per key",
                          headers={"Retry-After": str(wait)},
                          hint=f"retry in {wait} s")  # fmt: skip
        self._buckets[key] = (tokens - 1.0, now)
        if len(self._buckets) > 10_000:  # forget the idle ones (full buckets)
            full = [k for k, (t, _) in self._buckets.items() if t >= self.burst - 1]
            for stale in full[:5_000]:
                del self._buckets[stale]

    def run_started(self, key: str) -> None:
        """Count a run of `key`'s.

        Raises:
            Problem: 429 when `key` has `max_runs_per_key` runs going already.
        """
        going = self._runs.get(key, 0)
        if going >= self.max_runs_per_key:
            raise Problem(429, f"this key has {going} runs going; at most "
                               f"{self.max_runs_per_key} at once",
                          headers={"Retry-After": "1"},
                          hint="wait for one to finish")  # fmt: skip
        self._runs[key] = going + 1

    def run_ended(self, key: str) -> None:
        left = self._runs.get(key, 1) - 1
        if left > 0:
            self._runs[key] = left
        else:
            self._runs.pop(key, None)

"""afctl's own retry policy for model calls (the SDKs' built-in retries are switched off).

Retry 429, 5xx, timeouts and dropped connections with exponential backoff and full jitter;
honour `Retry-After` up to a cap, and fail clearly past it (a server asking for an hour must
not freeze a run); never retry 400, 401, 403, 404 or 422.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from afctl.providers.types import ProviderError

T = TypeVar("T")
_RNG = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = 3
    base_delay_s: float = 0.5
    max_delay_s: float = 20.0
    max_retry_after_s: float = 60.0
    """The longest `Retry-After` afctl waits; a longer one fails the call at once."""

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: uniform between 0 and the exponential ceiling of this attempt."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


OnRetry = Callable[[int, ProviderError, float], None]
"""Told (attempt number, the error, seconds until the next try) before each wait."""


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: OnRetry | None = None,
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Run `call`, retrying what the policy allows.

    Raises:
        ProviderError: the call failed for good (not retryable, retries used up, or the server
            asked to wait longer than `max_retry_after_s`).
    """
    rng = rng or _RNG
    attempt = 0
    while True:
        try:
            return await call()
        except ProviderError as error:
            if not error.retryable or attempt >= policy.max_retries:
                raise
            delay = policy.backoff(attempt, rng)
            if error.retry_after is not None:
                if error.retry_after > policy.max_retry_after_s:
                    raise ProviderError(
                        f"{error.message}; the server asked to retry after "
                        f"{error.retry_after:g} s, longer than the {policy.max_retry_after_s:g} s "
                        "afctl waits",
                        retryable=False,
                        status=error.status,
                        retry_after=error.retry_after,
                        hint="try again later, or use a model with more capacity (fallback)",
                    ) from error
                delay = max(delay, error.retry_after)
            attempt += 1
            if on_retry is not None:
                on_retry(attempt, error, delay)
            await sleep(delay)

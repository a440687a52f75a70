from __future__ import annotations

import asyncio
import random

import pytest

from afctl.errors import UsageError
from afctl.providers.http_errors import retry_after_seconds
from afctl.providers.models import ModelConfig, resolve_model
from afctl.providers.pricing import builtin_price, cost_usd
from afctl.providers.retry import RetryPolicy, call_with_retries
from afctl.providers.types import ProviderError, Usage


def test_backoff_is_full_jitter_under_an_exponential_ceiling():
    policy = RetryPolicy(base_delay_s=1, max_delay_s=10)
    rng = random.Random(3)
    for attempt in range(8):
        delays = [policy.backoff(attempt, rng) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= min(10, 2**attempt)


def test_only_retryable_errors_are_retried():
    calls = []

    async def failing():  # type: ignore[no-untyped-def]
        calls.append(1)
        raise ProviderError("nope", retryable=False, status=400)

    async def no_sleep(_: float) -> None:
        return None

    with pytest.raises(ProviderError):
        asyncio.run(call_with_retries(failing, RetryPolicy(), sleep=no_sleep))
    assert len(calls) == 1


def test_retry_after_headers():
    assert retry_after_seconds({"retry-after": "3"}) == 3
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) == 0
    assert retry_after_seconds({"retry-after": "soon"}) is None
    assert retry_after_seconds({}) is None


def test_prices_and_unknown_costs():
    assert builtin_price("openai", "gpt-4.1-mini").input_per_mtok == 0.40
    assert builtin_price("anthropic", "claude-haiku-4-5-20251001").output_per_mtok == 5.0
    assert builtin_price("openai", "gpt-4.1-mini-2025-04-14").input_per_mtok == 0.40
    assert builtin_price("ollama", "llama3.2") is None
    config = ModelConfig(
        "x", "openai", "gpt-4.1-mini", pricing=builtin_price("openai", "gpt-4.1-mini")
    )
    assert cost_usd(config, Usage(1_000_000, 1_000_000)) == pytest.approx(2.0)
    assert cost_usd(ModelConfig("y", "ollama", "llama3.2"), Usage(10, 10)) is None


def test_model_resolution():
    models = {
        "fast": {
            "spec": {
                "provider": "ollama",
                "model": "llama3.2",
                "params": {"temperature": 0.1},
                "fallback": ["openai/gpt-4.1-mini"],
                "pricing": {"input_per_mtok": 0.5, "output_per_mtok": 1},
            }
        }
    }
    fast = resolve_model("fast", models)
    assert (fast.provider, fast.model, fast.fallback) == (
        "ollama",
        "llama3.2",
        ("openai/gpt-4.1-mini",),
    )
    assert fast.pricing is not None and fast.pricing.input_per_mtok == 0.5
    assert resolve_model("anthropic/claude-haiku-4-5", {}).label == "anthropic/claude-haiku-4-5"
    with pytest.raises(UsageError):
        resolve_model("nothing", {})


def test_costs_show_significant_digits_never_a_false_zero():
    """Issue 15: $0.0000 hid real costs."""
    from afctl.providers.pricing import usd

    assert [usd(v) for v in (0, 5.7e-06, 0.0042, 0.0123, 1.5)] == [
        "$0", "$0.0000057", "$0.0042", "$0.0123", "$1.5000",
    ]  # fmt: skip

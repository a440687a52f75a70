"""The cost of a model call (prices: `afctl.pricing`)."""

from __future__ import annotations

from afctl.pricing import PRICES as PRICES
from afctl.pricing import builtin_price as builtin_price
from afctl.pricing import usd as usd
from afctl.providers.models import ModelConfig
from afctl.providers.types import Usage


def cost_usd(config: ModelConfig, usage: Usage) -> float | None:
    """The cost of one call, or None when the model's prices are unknown."""
    if config.pricing is None or not usage.known:
        return None
    return config.pricing.cost(usage.input_tokens, usage.cached_input_tokens, usage.output_tokens)

"""Built-in prices (US dollars per million tokens) and what a model call costs at a price.

The table holds the public list prices of current OpenAI and Anthropic models as of late 2025;
a `Model` resource's `pricing` overrides it. A model not in the table costs `None` (unknown),
never 0: a total that silently leaves out an expensive model is worse than no total.
Plain data at the bottom of afctl: manifest checks (is this a model afctl knows?), providers and
reports all read it, and it imports nothing of theirs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Pricing:
    """US dollars per million tokens."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_per_mtok": self.input_per_mtok,
            "output_per_mtok": self.output_per_mtok,
            "cached_input_per_mtok": self.cached_input_per_mtok,
        }

    def cost(self, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float:
        """US dollars for one call (cached input at its own price where there is one)."""
        cached = min(cached_input_tokens, input_tokens)
        cached_price = self.cached_input_per_mtok
        if cached_price is None:
            cached_price = self.input_per_mtok
        return (
            (input_tokens - cached) * self.input_per_mtok
            + cached * cached_price
            + output_tokens * self.output_per_mtok
        ) / 1_000_000


# model id prefix -> (input, output, cached input); the longest matching prefix wins, so dated
# ids such as claude-haiku-4-5-20251001 find their family.
PRICES: dict[str, dict[str, tuple[float, float, float | None]]] = {
    "openai": {
        "gpt-5": (1.25, 10.0, 0.125),
        "gpt-5-mini": (0.25, 2.0, 0.025),
        "gpt-5-nano": (0.05, 0.40, 0.005),
        "gpt-4.1": (2.0, 8.0, 0.50),
        "gpt-4.1-mini": (0.40, 1.60, 0.10),
        "gpt-4.1-nano": (0.10, 0.40, 0.025),
        "gpt-4o": (2.50, 10.0, 1.25),
        "gpt-4o-mini": (0.15, 0.60, 0.075),
        "o3": (2.0, 8.0, 0.50),
        "o3-mini": (1.10, 4.40, 0.55),
        "o4-mini": (1.10, 4.40, 0.275),
        "text-embedding-3-small": (0.02, 0.0, None),
        "text-embedding-3-large": (0.13, 0.0, None),
    },
    "anthropic": {
        "claude-opus-4-1": (15.0, 75.0, 1.50),
        "claude-opus-4": (15.0, 75.0, 1.50),
        "claude-sonnet-4-5": (3.0, 15.0, 0.30),
        "claude-sonnet-4": (3.0, 15.0, 0.30),
        "claude-3-7-sonnet": (3.0, 15.0, 0.30),
        "claude-haiku-4-5": (1.0, 5.0, 0.10),
        "claude-3-5-haiku": (0.80, 4.0, 0.08),
    },
    "local": {"echo": (0.0, 0.0, 0.0), "scripted": (0.0, 0.0, 0.0)},
}


_SNAPSHOT = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}|latest")


def builtin_price(provider: str, model: str) -> Pricing | None:
    table = PRICES.get(provider, {})
    # a model, or a dated snapshot of it (gpt-4.1-2025-04-14, claude-haiku-4-5-20251001):
    # not any longer name, or gpt-4.1-mni would be priced (and taken for real) as gpt-4.1
    matches = [prefix for prefix in table
               if model == prefix or (_SNAPSHOT.fullmatch(model.removeprefix(prefix + "-"))
               and model.startswith(prefix + "-"))]  # fmt: skip
    if not matches:
        return None
    input_price, output_price, cached = table[max(matches, key=len)]
    return Pricing(input_price, output_price, cached)


def usd(value: float) -> str:
    """A cost for people: from a cent up with four decimals, and below with two significant
    digits ($0.0000057), so a real cost never shows as $0.0000."""
    import math

    if value == 0:
        return "$0"
    if abs(value) >= 0.01:
        return f"${value:.4f}"
    digits = 1 - math.floor(math.log10(abs(value)))
    return f"${value:.{digits}f}"

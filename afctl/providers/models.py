"""From a model reference (`openai/gpt-4.1-mini`, or the name of a Model resource) to
everything needed to call it: provider, model id, endpoint, key variable, params, prices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from afctl.errors import UsageError
from afctl.pricing import Pricing as Pricing

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MAX_RETRIES = 3


@dataclass(frozen=True)
class Preset:
    """How to reach an OpenAI-compatible server by default."""

    base_url: str
    api_key_env: str | None
    default_key: str


PRESETS: dict[str, Preset] = {
    "ollama": Preset("http://localhost:11434/v1", "OLLAMA_API_KEY", "ollama"),
    "vllm": Preset("http://localhost:8000/v1", "VLLM_API_KEY", "EMPTY"),
    "lmstudio": Preset("http://localhost:1234/v1", "LMSTUDIO_API_KEY", "lm-studio"),
}
DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


@dataclass(frozen=True)
class ModelConfig:
    """A model ready to be called. `headers` may still hold `${env:...}` references."""

    ref: str
    """As written in the manifest or on the command line."""
    provider: str
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    pricing: Pricing | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_retries: int = DEFAULT_MAX_RETRIES
    api: str = "chat"
    fallback: tuple[str, ...] = ()
    script: dict[str, Any] | None = None
    max_concurrency: int | None = None
    """The most requests in flight to this model at once, per process."""

    @property
    def label(self) -> str:
        """`provider/model`, for logs and stats."""
        return f"{self.provider}/{self.model}"


def resolve_model(ref: str, models: Mapping[str, Mapping[str, Any]]) -> ModelConfig:
    """The configuration of `ref`, looking names up among the Model resources `models`.

    Raises:
        UsageError: the name is no Model resource, or the string has no provider.
    """
    from afctl.pricing import builtin_price

    if "/" not in ref:
        document = models.get(ref)
        if document is None:
            raise UsageError(
                f'model "{ref}" is neither provider/model nor a Model resource',
                hint="write provider/model (e.g. openai/gpt-4.1-mini) or define a Model",
            )
        return _from_resource(ref, document)
    provider, _, model = ref.partition("/")
    if not model:
        raise UsageError(f'"{ref}" names no model after the provider')
    return ModelConfig(
        ref=ref, provider=provider, model=model, pricing=builtin_price(provider, model)
    )


def _from_resource(name: str, document: Mapping[str, Any]) -> ModelConfig:
    from afctl.pricing import builtin_price

    spec = document.get("spec") or {}
    provider = str(spec["provider"])
    model = str(spec["model"])
    prices = spec.get("pricing")
    pricing = (
        Pricing(
            float(prices.get("input_per_mtok", 0.0)),
            float(prices.get("output_per_mtok", 0.0)),
            prices.get("cached_input_per_mtok"),
        )
        if isinstance(prices, dict) and ("input_per_mtok" in prices or "output_per_mtok" in prices)
        else builtin_price(provider, model)
    )
    return ModelConfig(
        ref=name,
        provider=provider,
        model=model,
        base_url=spec.get("base_url"),
        api_key_env=spec.get("api_key_env"),
        headers=dict(spec.get("headers") or {}),
        params=dict(spec.get("params") or {}),
        pricing=pricing,
        timeout_s=float(spec.get("timeout_s", DEFAULT_TIMEOUT_S)),
        max_retries=int(spec.get("max_retries", DEFAULT_MAX_RETRIES)),
        api=str(spec.get("api", "chat")),
        fallback=tuple(spec.get("fallback") or ()),
        script=spec.get("script"),
        max_concurrency=None
        if spec.get("max_concurrency") is None
        else int(spec["max_concurrency"]),
    )

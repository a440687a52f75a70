"""How a run's model calls are made: a stack of wrappers around the provider, each doing one
thing (the way pydantic-ai stacks wrapper models), all with one interface, `complete(prompt)`.

    Fallback([Cached(Lazy(Retrying(Gated(ProviderModel)))), ...])

- `ProviderModel` asks the provider (replay swaps in a recorded one: only this layer changes);
- `Gated` waits for the model's concurrency limit, shared by the runs of a pool;
- `Retrying` applies afctl's retry policy (the waits spent outside the gate) and times the call;
- `Lazy` builds what is below it on the first call, so a cached answer builds no SDK client
  and the client's set-up is not in any call's latency;
- `Cached` answers calls it has seen (evals);
- `Fallback` tries each model of the chain in turn while the error is retryable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from afctl.providers.models import ModelConfig
from afctl.providers.retry import OnRetry, RetryPolicy, call_with_retries
from afctl.providers.types import (
    Message,
    ModelRequest,
    ModelResponse,
    Provider,
    ProviderError,
    ToolSpec,
)
from afctl.runtime.streaming import CleanStream

if TYPE_CHECKING:
    from afctl.promptlog.cache import ResponseCache


@dataclass(frozen=True)
class Prompt:
    """One model call before a model is chosen: each model of a fallback chain makes its own
    request of it."""

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    params: dict[str, Any] | None = None
    """The agent's and the run's parameters, over each model's own."""
    turn: int = 1
    echo: CleanStream | None = None
    """Where streamed text goes (None: not streamed)."""
    _requests: dict[int, tuple[ModelConfig, ModelRequest]] = field(
        default_factory=dict, compare=False, repr=False
    )
    """id(config) -> (config, its request): the config is kept, so its id is not reused."""

    def request_for(self, config: ModelConfig) -> ModelRequest:
        """The request to `config`'s model (made once per model: the cache and the provider
        ask for the same one)."""
        made = self._requests.get(id(config))
        if made is not None and made[0] is config:
            return made[1]
        request = ModelRequest(
            config.model,
            self.messages,
            self.tools,
            {**config.params, **(self.params or {})},
            stream=self.echo is not None,
            turn=self.turn,
        )
        self._requests[id(config)] = (config, request)
        return request


@dataclass
class Answer:
    config: ModelConfig
    request: ModelRequest
    response: ModelResponse
    latency_ms: float = 0.0
    cached: bool = False


class Model(Protocol):
    @property
    def config(self) -> ModelConfig: ...

    async def complete(self, prompt: Prompt) -> Answer: ...


@dataclass
class ProviderModel:
    """The innermost layer: one attempt, from the provider."""

    config: ModelConfig
    provider: Provider

    async def complete(self, prompt: Prompt) -> Answer:
        request = prompt.request_for(self.config)
        on_text = None if prompt.echo is None else prompt.echo.attempt()
        started = time.perf_counter()
        response = await self.provider.complete(request, on_text)
        return Answer(self.config, request, response, (time.perf_counter() - started) * 1000)


@dataclass
class Gated:
    """Inside the model's limit on requests in flight (`max_concurrency`), when it has one."""

    inner: Model
    gate: asyncio.Semaphore | None

    @property
    def config(self) -> ModelConfig:
        return self.inner.config

    async def complete(self, prompt: Prompt) -> Answer:
        if self.gate is None:
            return await self.inner.complete(prompt)
        async with self.gate:
            return await self.inner.complete(prompt)


RetryHook = Callable[[Prompt, ModelConfig, int, ProviderError, float], None]
"""Told (prompt, model, attempt, error, seconds until the next try) before each wait."""


@dataclass
class Retrying:
    """afctl's retry policy; the answer's latency is the whole call's, waits included."""

    inner: Model
    policy: RetryPolicy
    on_retry: RetryHook | None = None

    @property
    def config(self) -> ModelConfig:
        return self.inner.config

    async def complete(self, prompt: Prompt) -> Answer:
        hook: OnRetry | None = None
        if self.on_retry is not None:
            told = self.on_retry

            def hook(attempt: int, error: ProviderError, delay: float) -> None:
                told(prompt, self.config, attempt, error, delay)

        started = time.perf_counter()
        answer = await call_with_retries(
            lambda: self.inner.complete(prompt), self.policy, on_retry=hook
        )
        answer.latency_ms = (time.perf_counter() - started) * 1000
        return answer


@dataclass
class Lazy:
    """Builds the layers below on the first call."""

    config: ModelConfig
    build: Callable[[], Model]
    _inner: Model | None = None

    async def complete(self, prompt: Prompt) -> Answer:
        if self._inner is None:
            self._inner = self.build()
        return await self._inner.complete(prompt)


@dataclass
class Cached:
    """Answers a call the cache has seen (costing nothing); stores the answers it had not."""

    inner: Model
    cache: ResponseCache
    repeat: int
    run_id: str
    redact: Callable[[str], str]

    @property
    def config(self) -> ModelConfig:
        return self.inner.config

    async def complete(self, prompt: Prompt) -> Answer:
        started = time.perf_counter()
        request = prompt.request_for(self.config)
        lookup = self.cache.get(self.config, request, self.repeat, self.run_id)
        if lookup.response is not None:
            content = lookup.response.message.content
            if prompt.echo is not None and content:
                prompt.echo.attempt()(content)
            latency = (time.perf_counter() - started) * 1000
            return Answer(self.config, request, lookup.response, latency, cached=True)
        answer = await self.inner.complete(prompt)
        self.cache.put(lookup, answer.response, self.redact)
        return answer


FallbackHook = Callable[[Prompt, ModelConfig, ModelConfig, ProviderError], None]
"""Told (prompt, the model that failed, the one tried next, its error)."""
ErrorHook = Callable[[Prompt, ModelConfig, ProviderError, float, bool], None]
"""Told (prompt, model, error, latency in ms, whether another model is tried next)."""


@dataclass
class Fallback:
    """The models of a chain in turn, while their errors are retryable."""

    chain: list[Model]
    on_fallback: FallbackHook | None = None
    on_error: ErrorHook | None = None

    @property
    def config(self) -> ModelConfig:
        return self.chain[0].config

    async def complete(self, prompt: Prompt) -> Answer:
        last_error: ProviderError | None = None
        for index, model in enumerate(self.chain):
            if index > 0 and self.on_fallback is not None:
                assert last_error is not None
                self.on_fallback(prompt, self.chain[index - 1].config, model.config, last_error)
            started = time.perf_counter()
            try:
                return await model.complete(prompt)
            except ProviderError as error:
                last_error = error
                more = error.retryable and index + 1 < len(self.chain)
                if self.on_error is not None:
                    latency = (time.perf_counter() - started) * 1000
                    self.on_error(prompt, model.config, error, latency, more)
                if not more:
                    raise
        assert last_error is not None
        raise last_error


def provider_stack(
    config: ModelConfig,
    provider: Callable[[ModelConfig], Provider],
    gate: asyncio.Semaphore | None,
    on_retry: RetryHook | None = None,
) -> Model:
    """One model's calls: built on first use, retried, within its concurrency limit."""
    return Lazy(
        config,
        lambda: Retrying(
            Gated(ProviderModel(config, provider(config)), gate),
            RetryPolicy(max_retries=config.max_retries),
            on_retry,
        ),
    )


def call_payload(agent: str, config: ModelConfig, request: ModelRequest) -> dict[str, Any]:
    """What the log keeps of a model call's request."""
    return {
        "agent": agent,
        "provider": config.provider,
        "model_ref": config.ref,
        "request": request.to_dict(),
    }


def recorded_chain(
    agent: str,
    configs: list[ModelConfig],
    provider: Callable[[ModelConfig], Provider],
    gate: Callable[[ModelConfig], asyncio.Semaphore | None],
    event: Callable[..., None],
    wrap: Callable[[Model], Model] = lambda model: model,
) -> Model:
    """Agent `agent`'s fallback chain over `configs`, with its retries, fallbacks and failed
    calls recorded through `event` (a run's journal); `wrap` adds layers over each model."""

    def retried(prompt: Prompt, config: ModelConfig, attempt: int, error: ProviderError,
                delay: float) -> None:  # fmt: skip
        event("retry", {"attempt": attempt, "error": error.message, "status": error.status,
                        "delay_s": delay},
              turn=prompt.turn, model=config.label,
              status=str(error.status or "transport"))  # fmt: skip

    def fell_back(prompt: Prompt, was: ModelConfig, now: ModelConfig,
                  error: ProviderError) -> None:  # fmt: skip
        event("fallback", {"from": was.label, "to": now.label, "error": str(error)},
              turn=prompt.turn, model=now.label)  # fmt: skip

    def failed(prompt: Prompt, config: ModelConfig, error: ProviderError, latency: float,
               more: bool) -> None:  # fmt: skip
        payload = call_payload(agent, config, prompt.request_for(config))
        event("model_error", {**payload, "error": error.message, "status": error.status,
                              "retryable": error.retryable},
              turn=prompt.turn, model=config.label, status=str(error.status or "transport"),
              latency_ms=latency, quiet=not more)  # the run says it  # fmt: skip

    chain = [wrap(provider_stack(config, provider, gate(config), retried)) for config in configs]
    return Fallback(chain, fell_back, failed)

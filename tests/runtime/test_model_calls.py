"""The wrappers model calls go through: each layer does its one job and stacks with the
others (retry inside fallback, cache over lazy client building, the concurrency gate)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from afctl.promptlog.cache import ResponseCache
from afctl.promptlog.store import PromptLog
from afctl.providers.models import ModelConfig
from afctl.providers.retry import RetryPolicy
from afctl.providers.types import Message, ModelRequest, ModelResponse, ProviderError, Usage
from afctl.runtime.model_calls import (
    Cached,
    Fallback,
    Gated,
    Lazy,
    Prompt,
    ProviderModel,
    Retrying,
    recorded_chain,
)
from afctl.runtime.streaming import CleanStream


class Scripted:
    """A provider answering from a list: a string is an answer, an exception is raised."""

    def __init__(self, *outcomes: str | ProviderError, delay: float = 0.0) -> None:
        self.outcomes = list(outcomes)
        self.delay = delay
        self.calls: list[ModelRequest] = []
        self.in_flight = 0
        self.most_in_flight = 0

    async def complete(self, request: ModelRequest, on_text: Any = None) -> ModelResponse:
        self.calls.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
            if isinstance(outcome, ProviderError):
                raise outcome
            if on_text is not None:
                on_text(outcome)
            return ModelResponse(Message("assistant", outcome), Usage(3, 2), "stop")
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        return None


def config(name: str = "m", **fields: Any) -> ModelConfig:
    return ModelConfig(f"local/{name}", "local", name, **fields)


def busy() -> ProviderError:
    return ProviderError("server busy", retryable=True, status=503)


PROMPT = Prompt((Message("user", "hi"),), params={"temperature": 0}, turn=2)
FAST = RetryPolicy(max_retries=2, base_delay_s=0.001)


def test_the_request_is_made_per_model_with_the_runs_params_over_the_models():
    request = PROMPT.request_for(config(params={"temperature": 1, "top_p": 0.5}))
    assert request.model == "m" and request.turn == 2 and not request.stream
    assert request.params == {"temperature": 0, "top_p": 0.5}


def test_retrying_tries_again_and_says_so_each_time():
    provider = Scripted(busy(), busy(), "ok")
    told: list[tuple[int, int]] = []
    model = Retrying(
        ProviderModel(config(), provider), FAST, lambda p, c, n, e, d: told.append((p.turn, n))
    )
    answer = asyncio.run(model.complete(PROMPT))
    assert answer.response.message.content == "ok" and len(provider.calls) == 3
    assert told == [(2, 1), (2, 2)]
    assert answer.latency_ms > 0


def test_retrying_gives_up_after_the_policy_and_on_what_is_not_retryable():
    provider = Scripted(ProviderError("bad key", retryable=False, status=401))
    with pytest.raises(ProviderError, match="bad key"):
        asyncio.run(Retrying(ProviderModel(config(), provider), FAST).complete(PROMPT))
    assert len(provider.calls) == 1
    always_busy = Scripted(busy())
    with pytest.raises(ProviderError, match="busy"):
        asyncio.run(Retrying(ProviderModel(config(), always_busy), FAST).complete(PROMPT))
    assert len(always_busy.calls) == 3


def test_a_retried_stream_is_shown_once():
    provider = Scripted(busy(), "hello")
    shown: list[str] = []
    prompt = Prompt((Message("user", "hi"),), echo=CleanStream(shown.append))
    asyncio.run(Retrying(ProviderModel(config(), provider), FAST).complete(prompt))
    assert "".join(shown) == "hello"
    assert provider.calls[0].stream


def test_fallback_moves_on_only_from_a_retryable_error():
    first, second = Scripted(busy()), Scripted("from the second")
    events: list[str] = []
    chain = Fallback(
        [ProviderModel(config("a"), first), ProviderModel(config("b"), second)],
        lambda p, was, now, e: events.append(f"fallback {was.model}->{now.model}"),
        lambda p, c, e, latency, more: events.append(f"error {c.model} more={more}"),
    )
    answer = asyncio.run(chain.complete(PROMPT))
    assert answer.config.model == "b" and answer.response.message.content == "from the second"
    assert events == ["error a more=True", "fallback a->b"]

    refused = Scripted(ProviderError("no such model", retryable=False, status=404))
    untouched = Scripted("never")
    chain = Fallback([ProviderModel(config("a"), refused), ProviderModel(config("b"), untouched)])
    with pytest.raises(ProviderError, match="no such model"):
        asyncio.run(chain.complete(PROMPT))
    assert untouched.calls == []


def test_the_gate_keeps_calls_in_flight_under_the_limit():
    provider = Scripted("ok", delay=0.02)
    model = Gated(ProviderModel(config(), provider), asyncio.Semaphore(2))

    async def many() -> None:
        await asyncio.gather(*(model.complete(PROMPT) for _ in range(6)))

    asyncio.run(many())
    assert len(provider.calls) == 6 and provider.most_in_flight == 2


def test_a_cached_answer_builds_no_client_and_costs_a_lookup(tmp_path):
    built: list[str] = []
    provider = Scripted("fresh")

    def build() -> ProviderModel:
        built.append("client")
        return ProviderModel(config(), provider)

    with PromptLog.in_memory() as log:
        cache = ResponseCache(log)
        first = Cached(Lazy(config(), build), cache, 0, "run-1", str)
        answer = asyncio.run(first.complete(PROMPT))
        assert not answer.cached and built == ["client"]
        log.flush()
        again = Cached(Lazy(config(), build), cache, 0, "run-2", str)
        shown: list[str] = []
        streamed = Prompt(PROMPT.messages, params=PROMPT.params, turn=2,
                          echo=CleanStream(shown.append))  # fmt: skip
        hit = asyncio.run(again.complete(streamed))
    assert hit.cached and hit.response.message.content == "fresh"
    assert built == ["client"] and len(provider.calls) == 1
    assert shown == ["fresh"]  # a cached answer is still shown to a streaming caller


def test_a_recorded_chain_records_retries_errors_and_fallbacks():
    providers = {"a": Scripted(busy()), "b": Scripted("ok")}
    events: list[tuple[str, dict[str, Any]]] = []

    def event(kind: str, payload: dict[str, Any], **narrow: Any) -> None:
        events.append((kind, narrow))

    chain = recorded_chain(
        "helper",
        [config("a", max_retries=1), config("b")],
        lambda c: providers[c.model],
        lambda c: None,
        event,
    )
    # the retry policy's real backoff: one short wait before giving up on "a"
    answer = asyncio.run(chain.complete(PROMPT))
    assert answer.config.model == "b"
    assert [kind for kind, _ in events] == ["retry", "model_error", "fallback"]
    assert events[0][1]["model"] == "local/a" and events[0][1]["turn"] == 2
    assert events[1][1]["quiet"] is False  # another model is tried: the run goes on, so warn


def test_a_prompt_asks_each_model_with_its_own_parameters():
    prompt = Prompt((Message("user", "hi"),), params={"temperature": 0})
    for top_p in (0.1, 0.2, 0.3):  # configs come and go; each gets its own request
        assert prompt.request_for(config(params={"top_p": top_p})).params["top_p"] == top_p

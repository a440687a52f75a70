"""The model side of one run: the chain of wrapped models the answering agent calls, what
each call costs and records, and the judge calls of its guardrails.

An answer that output guardrails will look at is neither streamed nor recorded before they
have run: it is held, and `release` records it as they left it.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

from afctl.providers.models import ModelConfig
from afctl.providers.pool import ProviderPool
from afctl.providers.types import Message, Provider, ProviderFactory
from afctl.runtime.activation import Active
from afctl.runtime.environment import RunEnvironment
from afctl.runtime.model_calls import (
    Answer,
    Cached,
    Model,
    Prompt,
    call_payload,
    provider_stack,
    recorded_chain,
)
from afctl.runtime.recorder import RunJournal
from afctl.runtime.run_types import RunHooks, RunRequest, Spend
from afctl.runtime.streaming import CleanStream


class RunModels:
    def __init__(
        self,
        environment: RunEnvironment,
        journal: RunJournal,
        request: RunRequest,
        hooks: RunHooks,
    ) -> None:
        self.environment = environment
        self.journal = journal
        self.request = request
        self.hooks = hooks
        self.owns_pool = environment.providers is None
        """Without a shared pool, the run builds its own SDK clients and closes them."""
        self.pool = environment.providers if environment.providers is not None else ProviderPool()
        self.provider = functools.partial(_provider, self.pool, environment,
                                          hooks.provider_factory)  # fmt: skip
        self.spend = Spend()
        self.label: str | None = None
        """The model that gave the last answer (`provider/model`)."""
        self._chain: Model | None = None
        self._held: tuple[dict[str, Any], dict[str, Any]] | None = None
        self._said_not_streamed = False

    def use(self, active: Active) -> None:
        """From now on, `active` answers: its models' chain (see `model_calls`)."""
        cache, request, journal = self.hooks.cache, self.request, self.journal

        def wrap(model: Model) -> Model:
            if cache is None:
                return model
            return Cached(model, cache, request.repeat, journal.run_id, journal.redact)

        self._chain = recorded_chain(active.name, active.chain, self.provider, self.pool.gate,
                                     journal.event, wrap)  # fmt: skip

    async def answer(self, active: Active, messages: list[Message], turn: int) -> Message:
        """The model's next message in the conversation, counted and recorded."""
        on_text = None if active.guarded else self.hooks.on_text
        if active.guarded and self.hooks.on_text is not None and not self._said_not_streamed:
            self._said_not_streamed = True
            from afctl.logs import event as log_event

            log_event(logging.WARNING, f"agent/{active.name} has output guardrails: its answer "
                      "is shown once they have passed it, not streamed")  # fmt: skip
        prompt = Prompt(
            tuple(messages),
            tuple(t.spec for t in active.tools),
            {**(active.spec.get("params") or {}), **self.request.params},
            turn,
            None if on_text is None else CleanStream(on_text),
        )
        assert self._chain is not None, "use(active) first"
        answer = await self._chain.complete(prompt)
        self._record(active, answer)
        return answer.response.message

    def _record(self, active: Active, answer: Answer) -> None:
        config, response = answer.config, answer.response
        cost = self.spend.add(config, response.usage, cached=answer.cached)
        self.label = config.label
        payload = {
            **call_payload(active.name, config, answer.request),
            "response": response.to_dict(),
            "pricing": config.pricing.to_dict() if config.pricing else None,
            **({"cached": True} if answer.cached else {}),
        }
        narrow = {
            "turn": answer.request.turn,
            "model": config.label,
            "status": response.finish_reason,
            "latency_ms": answer.latency_ms,
            "input_tokens": response.usage.counts()["input_tokens"],
            "output_tokens": response.usage.counts()["output_tokens"],
            "cost_usd": cost,
        }
        if active.guarded and not response.message.tool_calls:
            self._held = (payload, narrow)
        else:
            self.journal.event("model_call", payload, **narrow)

    def release(self, guarded: Message) -> None:
        """Record the held model call, with the answer as the output guardrails left it."""
        held, self._held = self._held, None
        if held is not None:
            payload, narrow = held
            response = {**payload["response"], "message": guarded.to_dict()}
            self.journal.event("model_call", {**payload, "response": response}, **narrow)

    async def judge(self, model_ref: str, instructions: str, text: str, turn: int) -> str:
        """One call to a judge model (an llm_judge guardrail); its cost is the run's."""
        config = self.environment.model(model_ref)
        model = provider_stack(config, self.provider, self.pool.gate(config))
        prompt = Prompt((Message("system", instructions), Message("user", text)), turn=turn)
        answer = await model.complete(prompt)
        self.spend.add(config, answer.response.usage, cached=answer.cached)
        return answer.response.message.content or ""

    async def aclose(self) -> None:
        if self.owns_pool:
            await self.pool.aclose()


def _provider(
    pool: ProviderPool,
    environment: RunEnvironment,
    factory: ProviderFactory | None,
    config: ModelConfig,
) -> Provider:
    if factory is None:
        from afctl.providers.builtin import make_provider

        factory = make_provider
    return pool.get(config, environment, factory)

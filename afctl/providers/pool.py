"""Provider clients kept for the life of an event loop, so many runs share connections.

Creating an SDK client costs ~30 ms and its connection pool is lost with it; an eval of a
thousand cases, or an application calling `AgentRun` in a loop, should not pay that per run.
A pool belongs to one event loop (SDK clients are bound to the loop that uses them): create it
inside the loop and `await pool.aclose()` before the loop ends.

A pooled client was built with secrets (API keys) read through the run that created it; every
later run that reuses it is told those values too, so they are redacted from its log as well.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import TYPE_CHECKING

from afctl.providers.models import ModelConfig
from afctl.providers.types import Provider

if TYPE_CHECKING:
    from afctl.tool_context import ToolContext

Factory = Callable[[ModelConfig, "ToolContext"], Provider]


class ProviderPool:
    def __init__(self) -> None:
        self._entries: dict[tuple[object, ...], tuple[Provider, frozenset[str]]] = {}
        self._gates: dict[tuple[str, str, str | None], asyncio.Semaphore] = {}

    def gate(self, config: ModelConfig) -> asyncio.Semaphore | None:
        """The limit on requests in flight to a model with `max_concurrency`, shared by every
        run that uses this pool."""
        if config.max_concurrency is None:
            return None
        key = (config.provider, config.model, config.base_url)
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Semaphore(config.max_concurrency)
        return gate

    def get(self, config: ModelConfig, environment: ToolContext, factory: Factory) -> Provider:
        # what the client is built from: endpoint, credentials, headers (not params or prices)
        key = (
            config.provider, config.model, config.base_url, config.api_key_env, config.timeout_s,
            config.api, tuple(sorted(config.headers.items())),
            None if config.script is None else json.dumps(config.script, default=str),
        )  # fmt: skip
        entry = self._entries.get(key)
        if entry is None:
            before = environment.secrets.values()
            provider = factory(config, environment)
            entry = (provider, frozenset(environment.secrets.values() - before))
            self._entries[key] = entry
        provider, secrets = entry
        for value in secrets:
            environment.secrets.remember(value)
        return provider

    def __len__(self) -> int:
        """How many SDK clients the pool holds."""
        return len(self._entries)

    async def aclose(self) -> None:
        entries, self._entries = self._entries, {}
        for provider, _ in entries.values():
            try:
                await provider.aclose()
            except Exception:  # closing must never hide the outcome of the runs
                pass

"""Embeddings for knowledge packs from the pack's `embedding_model`, through the same
providers (and retry policy) as agents: `openai/...`, OpenAI-compatible servers, or the offline
`local/hashing`."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from afctl.errors import UsageError

if TYPE_CHECKING:
    from afctl.tool_context import ToolContext


class Embedder:
    """A callable `texts -> vectors` over one model, for synchronous code (a build, a search
    in a worker thread): it keeps its provider and an event loop of its own until `close`."""

    def __init__(self, model_ref: str, environment: ToolContext) -> None:
        from afctl.providers.models import resolve_model

        self.environment = environment
        self.config = resolve_model(model_ref, environment.catalog.of_kind("Model"))
        self._loop: asyncio.AbstractEventLoop | None = None
        self._provider: Any = None

    def __call__(self, texts: list[str]) -> list[list[float]]:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(self._embed(texts))

    async def _embed(self, texts: list[str]) -> list[list[float]]:
        from afctl.providers.builtin import make_provider
        from afctl.providers.retry import RetryPolicy, call_with_retries

        if self._provider is None:
            self._provider = make_provider(self.config, self.environment)
        embed = getattr(self._provider, "embed", None)
        if embed is None:
            raise UsageError(
                f"{self.config.label} cannot make embeddings",
                hint="use openai/text-embedding-3-small, an OpenAI-compatible server, "
                "or local/hashing (offline)",
            )
        vectors: list[list[float]] = await call_with_retries(
            lambda: embed(self.config.model, texts),
            RetryPolicy(max_retries=self.config.max_retries),
        )
        return vectors

    def close(self) -> None:
        if self._loop is not None:
            if self._provider is not None:
                self._loop.run_until_complete(self._provider.aclose())
            self._loop.close()
            self._loop = None

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

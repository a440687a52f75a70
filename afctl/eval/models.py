"""The models an eval's assertions ask (judges, embeddings), through the same providers, pool
and retry policy as the runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from afctl.errors import RunError


class EvalModels:
    def __init__(
        self,
        catalog: Any,
        pool: Any,
        root: Path,
        workspace: Path,
        default_judge: str | None,
        grants: Any = None,
    ) -> None:
        self.grants = grants
        self.catalog = catalog
        self.pool = pool
        self.root = root
        self.workspace = workspace
        self.default_judge = default_judge

    def _provider(self, model: str) -> tuple[Any, Any]:
        from afctl.providers.builtin import make_provider
        from afctl.runtime.environment import RunEnvironment
        from afctl.safety.secrets import Secrets

        environment = RunEnvironment(
            self.root, Secrets(), self.catalog, self.workspace, self.grants, providers=self.pool
        )
        config = environment.model(model)
        return config, self.pool.get(config, environment, make_provider)

    async def judge(self, model: str, instructions: str, text: str) -> str:
        from afctl.providers.retry import RetryPolicy, call_with_retries
        from afctl.providers.types import Message, ModelRequest

        config, provider = self._provider(model)
        request = ModelRequest(
            config.model,
            (Message("system", instructions), Message("user", text)),
            (),
            dict(config.params),
        )
        response = await call_with_retries(
            lambda: provider.complete(request), RetryPolicy(max_retries=config.max_retries)
        )
        return response.message.content or ""

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        from afctl.providers.retry import RetryPolicy, call_with_retries

        config, provider = self._provider(model)
        embed = getattr(provider, "embed", None)
        if embed is None:
            raise RunError(f"{config.label} cannot make embeddings")
        vectors: list[list[float]] = await call_with_retries(
            lambda: embed(config.model, texts), RetryPolicy(max_retries=config.max_retries)
        )
        return vectors

"""What an eval, a stress test and a tuning run all drive: a suite's agent, run case by case
as ordinary runs in the prompt log, sharing one provider pool (connections, concurrency
limits) for the life of an event loop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.eval.assertions import Outcome
from afctl.eval.suite import Case, Suite, Variant
from afctl.promptlog.cache import ResponseCache
from afctl.promptlog.store import PromptLog
from afctl.providers.pool import ProviderPool
from afctl.providers.types import OnText
from afctl.runtime.agent import AgentRun, RunOptions
from afctl.runtime.environment import Catalog, RunEnvironment


@dataclass
class EvalTarget:
    root: Path
    env: str
    workspace: Path
    catalog: Catalog
    log: PromptLog
    pool: ProviderPool

    def agent_run(
        self,
        suite: Suite,
        case: Case,
        variant: Variant,
        repeat: int,
        *,
        eval_id: str,
        cache: ResponseCache | None = None,
        on_text: OnText | None = None,
        catalog: Catalog | None = None,
    ) -> AgentRun:
        """A run of the suite's agent for one case in one variant (`catalog` overrides the
        resources, as tuning does to try other instructions)."""
        from afctl.safety.secrets import Secrets

        variables = case.vars_for(variant)
        secrets = Secrets(variables={k: str(v) for k, v in variables.items()})
        environment = RunEnvironment(
            self.root, secrets, catalog or self.catalog, self.pool, self.workspace
        )
        options = RunOptions(
            variables,
            model=variant.model,
            env=self.env,
            params=dict(variant.params),
            eval_id=eval_id,
            cache=cache,
            repeat=repeat,
            on_text=on_text,
            commit_at_end=False,  # results are saved together at the end
        )
        return AgentRun(suite.agent, environment, self.log, options)

    @staticmethod
    def outcome(agent_run: AgentRun, case: Case, result: Any) -> Outcome:
        """What assertions see of a finished run."""
        return Outcome.of_run(result, agent_run.trail, case.vars)

    def models(self, suite: Suite) -> Any:
        """The models the suite's assertions ask (judges, embeddings)."""
        from afctl.eval.models import EvalModels

        return EvalModels(self.catalog, self.pool, self.root, self.workspace, suite.judge)

"""The services of one context, built once and wired together (the composition root).

Both façades (`afctl.Context`, `afctl.AsyncContext`) hold one `Services` and only delegate.
Each service gets its collaborators here; none builds another. The shared resources (the
state store, the prompt log and its writer, the catalog of applied resources) belong to the
services until `close`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from afctl.analytics.service import AnalyticsService
from afctl.auth.service import AuthService
from afctl.blueprints.service import BlueprintService
from afctl.console import Console
from afctl.dbops.service import DbService
from afctl.eval.service import EvalService
from afctl.knowledge.service import KnowledgeService
from afctl.manifests.service import ManifestService
from afctl.promptlog.service import LogService
from afctl.replay.service import ReplayService
from afctl.runtime.service import RunService
from afctl.state.service import StateService
from afctl.triggers.service import TriggerService
from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.manifests.catalog import Catalog
    from afctl.runtime.environment import RunEnvironment
    from afctl.safety.capabilities import Grants


@dataclass(frozen=True)
class Services:
    workspace: Workspace
    manifests: ManifestService
    state: StateService
    logs: LogService
    knowledge: KnowledgeService
    runs: RunService
    replay: ReplayService
    evals: EvalService
    triggers: TriggerService
    blueprints: BlueprintService
    analytics: AnalyticsService
    auth: AuthService
    db: DbService

    @classmethod
    def build(
        cls,
        workspace: str | os.PathLike[str] | None,
        env: str | None,
        console: Console | None = None,
    ) -> Services:
        """Every service of a context for `workspace` (found by walking up when None) and
        `env` (`AFCTL_ENV`, default `default`), reporting through `console` (by default, one
        that reports nothing and asks no one).

        Raises:
            UsageError: `env` is not a valid environment name.
        """
        place = Workspace(workspace, env)
        console = console or Console()
        manifests = ManifestService(place, console)
        state = StateService(place, manifests, console)
        logs = LogService(place)

        def grants() -> Grants:
            """What installed blueprints may do, read afresh (trust may have changed)."""
            from afctl.blueprints.trust import BlueprintGrants

            return BlueprintGrants(place.root, place.dir)

        runs = RunService(place, state, logs, grants, console)

        def environment(catalog: Catalog) -> RunEnvironment:
            return runs.environment(catalog, {})

        knowledge = KnowledgeService(place, state, environment)
        state.after_apply.append(knowledge.refresh)
        return cls(place, manifests, state, logs, knowledge, runs, ReplayService(runs),
                   EvalService(runs), TriggerService(runs), BlueprintService(place, state, logs),
                   AnalyticsService(place), AuthService(place, state),
                   DbService(place))  # fmt: skip

    def close(self) -> None:
        """Commit what is pending and close the shared connections."""
        try:
            self.logs.close()
        finally:
            try:
                self.state.close()
            finally:
                self.runs.console.close()

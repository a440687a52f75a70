"""The triggers of the applied workflows, listed or served (webhooks, schedules, watches)."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from afctl.runtime.service import RunService

if TYPE_CHECKING:
    from afctl.manifests.catalog import Catalog
    from afctl.triggers.definitions import Trigger
    from afctl.triggers.serve import TriggerHost
    from afctl.workers.queueing import RunQueue


class TriggerService:
    def __init__(self, runs: RunService) -> None:
        self.runs = runs
        self.state = runs.state
        self.workspace = runs.workspace
        self.console = runs.console

    def triggers(self) -> list[tuple[Trigger, datetime.datetime | None]]:
        """The triggers of the workflows applied in this environment, each with its next fire
        time (schedules only).

        Raises:
            UsageError: a trigger is invalid (two webhooks on one path, a bad time zone).
        """
        from afctl.triggers.definitions import next_fire, triggers_of

        now = datetime.datetime.now(datetime.UTC)
        found = triggers_of(dict(self.state.catalog().of_kind("Workflow")))
        return [(t, next_fire(t, now) if t.type == "schedule" else None) for t in found]

    def host(
        self,
        *,
        variables: dict[str, Any] | None = None,
        on_fire: Callable[[str, str], None] | None = None,
        queue: RunQueue | None = None,
    ) -> TriggerHost:
        """The triggers of the applied workflows, ready for a server to run (`TriggerHost`):
        it follows the applied state, so an apply changes what it serves without a restart.
        Call it on the loop the server runs on (the runs share its clients).

        Raises:
            UsageError: a trigger is invalid, or a signed webhook's secret is not set.
        """
        from afctl.triggers.definitions import triggers_of
        from afctl.triggers.serve import Launcher, TriggerHost

        catalog = self.state.catalog()
        found = triggers_of(dict(catalog.of_kind("Workflow")))
        variables = dict(variables or {})
        environment = self.runs.environment(catalog, variables)
        seen = [self.state.serial()]

        def reload() -> Catalog | None:
            """The applied resources, when an apply changed them since the last look."""
            serial = self.state.serial()
            if serial == seen[0]:
                return None
            seen[0] = serial
            environment.grants = self.runs.grants()  # trust may have changed with it
            return self.state.catalog()

        launcher = Launcher(environment, self.runs.logs.log, self.workspace.env, variables,
                            on_fire=on_fire, queue=queue)  # fmt: skip
        return TriggerHost(found, launcher, self.workspace.root, reload=reload)

"""The triggers of the applied workflows, listed or served (webhooks, schedules, watches)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from afctl.errors import UsageError
from afctl.runtime.service import RunService, sharing_mcp

if TYPE_CHECKING:
    from afctl.manifests.catalog import Catalog
    from afctl.triggers.definitions import Trigger


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

    async def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8787,
        *,
        variables: dict[str, Any] | None = None,
    ) -> None:
        """Run the triggers of the applied workflows until SIGTERM or SIGINT: webhooks (and
        /healthz, /metrics) on host:port, schedules, file watches. The console is told (a
        notice) when the server listens, where, and how many triggers run.

        Raises:
            UsageError: nothing to serve, a webhook secret is not set, or the port is taken.
        """
        from afctl.triggers.definitions import triggers_of
        from afctl.triggers.serve import Launcher, serve

        catalog = self.state.catalog()
        found = triggers_of(dict(catalog.of_kind("Workflow")))
        if not found:
            raise UsageError(
                f"no workflow applied in environment {self.workspace.env} declares triggers",
                hint="add spec.triggers to a workflow and afctl apply it",
            )
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

        def ready(address: str) -> None:
            self.console.notice(f"afctl serve: listening on {address} · {len(found)} trigger(s) "
                                f"· env {self.workspace.env}")  # fmt: skip

        launcher = Launcher(environment, self.runs.logs.log, self.workspace.env, variables)
        try:
            await sharing_mcp(environment, serve(found, launcher, self.workspace.root, host, port,
                                                 on_ready=ready, reload=reload))  # fmt: skip
        except OSError as exc:
            raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
        finally:
            self.runs.logs.flush()

"""One server's parts, made on its event loop when it starts: the async context (services of
one workspace and environment), who may call (`Authenticator`), the limits, the runs it
started, the triggers it serves, its metrics, and the audit log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afctl.server.auth import Authenticator, JwtSettings
from afctl.server.limits import Limits
from afctl.workers.settings import executor

AUDIT_FLUSH_S = 0.05

if TYPE_CHECKING:
    from afctl.auth.keys import AuditRecord
    from afctl.context import AsyncContext
    from afctl.server.auth import Principal
    from afctl.server.metrics import ServerMetrics
    from afctl.server.runs import RunManager
    from afctl.triggers.serve import TriggerHost
    from afctl.workers.queueing import RunQueue


@dataclass
class ServeSettings:
    """How `afctl serve` was asked to run (flags and their environment variables)."""

    host: str = "127.0.0.1"
    port: int = 8080
    workspace: str | None = None
    env: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    jwt: JwtSettings = field(default_factory=JwtSettings)
    insecure_no_auth: bool = False
    limits: Limits = field(default_factory=Limits)
    cors_origins: tuple[str, ...] = ()
    """Origins a browser may call from (none: CORS stays off)."""
    grace_s: float = 10.0
    """How long running requests and runs get to finish after SIGTERM."""
    registry: str | None = None
    """The blueprint registry installs come from (a configured one's name)."""
    executor: str | None = None
    """Where background runs and triggered workflows run: `local` (this process) or `celery`
    (queued for `afctl worker`s over AFCTL_BROKER_URL); None: AFCTL_EXECUTOR, or the
    workspace's `executor` setting, or local."""


@dataclass
class Server:
    context: AsyncContext
    settings: ServeSettings
    authenticator: Authenticator
    runs: RunManager
    metrics: ServerMetrics
    triggers: TriggerHost
    queue: RunQueue | None = None
    """Where background runs and triggered workflows go (None: they run in this process)."""
    extras: dict[str, Any] = field(default_factory=dict)
    """What routes keep for the server's life (the evals it runs)."""
    pending_audit: list[AuditRecord] = field(default_factory=list)

    @property
    def env(self) -> str:
        return self.context.env

    @property
    def limits(self) -> Limits:
        return self.settings.limits

    @classmethod
    def start(cls, context: AsyncContext, settings: ServeSettings) -> Server:
        """The server's parts over `context` (on the running loop).

        Raises:
            UsageError: a trigger is invalid, a signed webhook's secret is not set, or the
                executor is celery and no broker is configured.
            BrokerUnavailable: the broker cannot be used.
        """
        from afctl.server.metrics import ServerMetrics
        from afctl.server.runs import RunManager

        services = context.services
        environ = services.workspace.settings
        queue = None
        if executor(settings.executor, environ) == "celery":
            from afctl.workers.broker import usable_broker
            from afctl.workers.queueing import RunQueue

            broker = usable_broker("afctl serve --executor celery", environ)
            queue = RunQueue(broker, services.logs.log)
        authenticator = Authenticator(services.auth, settings.jwt, settings.insecure_no_auth)
        runs = RunManager(context, settings.limits)
        metrics = ServerMetrics(lambda: services.logs.log, lambda: len(runs.live), environ)
        triggers = services.triggers.host(variables=settings.variables, on_fire=metrics.fired,
                                          queue=queue)  # fmt: skip
        return cls(context, settings, authenticator, runs, metrics, triggers, queue)

    def audit(
        self, principal: Principal | None, role: str, action: str, target: str, status: int,
        request_id: str,
    ) -> None:  # fmt: skip
        """Record a mutating call, however it ended (written within AUDIT_FLUSH_S, in
        batches: a commit of state.db per request would halve the server's throughput)."""
        from afctl.auth.keys import AuditRecord
        from afctl.ids import new_ulid, utc_now

        result = "ok" if status < 400 else "denied" if status in (401, 403, 429) else "failed"
        self.pending_audit.append(AuditRecord(
            new_ulid(), utc_now(), principal.who if principal else "unauthenticated",
            role or "-", self.env, action, target[:300] or "-", result, status, request_id,
        ))  # fmt: skip

    def flush_audit(self) -> None:
        """Write the audit records not written yet."""
        records, self.pending_audit = self.pending_audit, []
        try:
            self.context.services.auth.audit(records)
        except Exception as exc:  # the answers are made; a failure is logged loudly
            from afctl.logs import event

            event(40, f"{len(records)} audit record(s) could not be written "
                      f"({type(exc).__name__})")  # fmt: skip

    async def write_audit(self, stop: Any) -> None:
        """Flush the audit records every AUDIT_FLUSH_S until `stop` is set, then once more."""
        import asyncio

        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), AUDIT_FLUSH_S)
            except TimeoutError:
                pass
            self.flush_audit()

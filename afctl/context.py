"""`Context` and `AsyncContext`: the façades the CLI, the Python API and tests drive.

Both hold the same services (`afctl.services`) and only delegate to them, the way httpx's
`Client` and `AsyncClient` offer one API twice: `AsyncContext` for async code (a server, an
async test), `Context` for everything else. `Context` works where an event loop already runs
(a Jupyter notebook): its runs then go on a loop of their own in a worker thread.

A context owns its connections (the state store, the prompt log and its writer) until it is
closed: use it as a context manager, or call `close()` (a context that is dropped closes on
garbage collection). Nothing here prints; problems come back as values (diagnostics, plans)
or as `afctl.errors` exceptions. What happens while a call works (progress, streamed text,
steps) and the questions for the user (confirming a plan, approving a tool call) go to the
context's `console` (`afctl.console.Console`: by default it reports nothing, lets plans go
ahead and asks no one). Each method's documentation is on the service method it delegates to.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from afctl.analytics.service import AnalyticsService
from afctl.auth.service import AuthService
from afctl.blueprints.service import BlueprintService
from afctl.console import Console as Console
from afctl.dbops.service import DbService
from afctl.eval.service import EvalService
from afctl.knowledge.service import KnowledgeBuild as KnowledgeBuild
from afctl.knowledge.service import KnowledgeService
from afctl.manifests.service import ManifestService, PathArg
from afctl.promptlog.service import LogService
from afctl.promptlog.service import Transcript as Transcript
from afctl.replay.service import ReplayService
from afctl.runtime.service import RunService
from afctl.services import Services
from afctl.state.service import DEFAULT_LOCK_TIMEOUT_S as DEFAULT_LOCK_TIMEOUT_S
from afctl.state.service import ApplyOutcome as ApplyOutcome
from afctl.state.service import Description as Description
from afctl.state.service import ResourceDiff as ResourceDiff
from afctl.state.service import StateService
from afctl.sync import ContextLoop
from afctl.triggers.service import TriggerService

if TYPE_CHECKING:
    from afctl.manifests.model import ManifestSet
    from afctl.manifests.validate import ValidationResult
    from afctl.runtime.agent import RunResult

P = ParamSpec("P")
R = TypeVar("R")
S = TypeVar("S")
Method = Callable[Concatenate[S, P], R]


def _named(call: Callable[..., Any], method: Callable[..., Any]) -> None:
    functools.update_wrapper(call, method)


def _via(service: str, method: Method[S, P, R]) -> Callable[Concatenate[Any, P], R]:
    """A façade method calling `method` of the context's `service`."""

    def call(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return method(getattr(self._services, service), *args, **kwargs)

    _named(call, method)
    return call


def _awaiting(
    service: str, method: Method[S, P, R]
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, R]]:
    """An async façade method calling `method` (sync or async) of the context's `service`."""

    async def call(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        result: Any = method(getattr(self._services, service), *args, **kwargs)
        if isinstance(result, Coroutine):
            result = await result
        return result  # type: ignore[no-any-return]

    _named(call, method)
    return call


_CALLING: dict[object, Any] = {}
"""The sync contexts whose calls are running (see `_blocking`)."""


def _blocking(
    service: str, method: Method[S, P, Coroutine[Any, Any, R]]
) -> Callable[Concatenate[Any, P], R]:
    """A sync façade method running the async `method` of the context's `service`."""

    def call(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
        loop: ContextLoop = self._loop
        work = method(getattr(self._services, service), *args, **kwargs)
        # The loop outlives the call, and a traceback it keeps (an MCP session's) holds this
        # frame. So the context is held in _CALLING for the call, not in the frame: a dropped
        # context is then collected (and its clients closed) when the call returns.
        token = object()
        _CALLING[token] = self
        del self
        try:
            return loop.run(work)
        finally:
            del _CALLING[token]

    _named(call, method)
    return call


class _Base:
    """What both façades share: the services, where they work, and closing."""

    def __init__(
        self,
        workspace: PathArg | None = None,
        env: str | None = None,
        console: Console | None = None,
    ) -> None:
        """Args:
        workspace: the repository root or `.afctl/` folder; found by walking up when omitted.
        env: the environment name (`AFCTL_ENV`, default `default`).
        console: where progress, streamed text and questions go (see `afctl.console`).

        Raises:
            UsageError: `env` is not a valid environment name.
        """
        self._services = Services.build(workspace, env, console)
        self._loop = ContextLoop() if isinstance(self, Context) else None
        """The sync façade's one event loop; the async one runs on its caller's."""
        self._finalizer = weakref.finalize(self, _shut_down, self._services, self._loop)

    @property
    def services(self) -> Services:
        """The services this context delegates to (for code that needs one directly)."""
        return self._services

    @property
    def workspace(self) -> Path | None:
        """The `.afctl/` folder in use; None until one exists."""
        return self._services.workspace.found

    @property
    def env(self) -> str:
        return self._services.workspace.env

    @property
    def console(self) -> Console:
        return self._services.runs.console

    @property
    def root(self) -> Path:
        """The repository root: the folder holding `.afctl/` (the current one if none yet)."""
        return self._services.workspace.root

    read_plan = staticmethod(StateService.read_plan)
    save_plan = staticmethod(StateService.save_plan)


class Context(_Base):
    """afctl's engine for one workspace and environment, for synchronous code.

    Args:
        workspace: the repository root or `.afctl/` folder; found by walking up when omitted.
        env: the environment name (`AFCTL_ENV`, default `default`).
        console: where progress, streamed text and questions go (see `afctl.console`).
    """

    def close(self) -> None:
        """Commit what is pending and close the context's connections."""
        self._finalizer()

    def __enter__(self) -> Context:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    validate = _via("manifests", ManifestService.validate)
    load = _via("manifests", ManifestService.load)
    plan = _via("state", StateService.plan)
    apply = _via("state", StateService.apply)
    apply_saved_plan = _via("state", StateService.apply_saved_plan)
    diff = _via("state", StateService.diff)
    get = _via("state", StateService.get)
    describe = _via("state", StateService.describe)
    history = _via("state", StateService.history)
    delete = _via("state", StateService.delete)
    rollback = _via("state", StateService.rollback)
    force_unlock = _via("state", StateService.force_unlock)
    knowledge_index = _via("knowledge", KnowledgeService.index)
    knowledge_build = _via("knowledge", KnowledgeService.build)
    knowledge_query = _via("knowledge", KnowledgeService.query)
    prompt_log = _via("logs", LogService.open)
    runs = _via("logs", LogService.runs)
    transcript = _via("logs", LogService.transcript)
    log_sizes = _via("logs", LogService.sizes)
    prune_logs = _via("logs", LogService.prune)
    vacuum_logs = _via("logs", LogService.vacuum)
    run = _blocking("runs", RunService.run)
    run_workflow = _blocking("runs", RunService.run_workflow)
    resume = _blocking("runs", RunService.resume)
    approve = _blocking("runs", RunService.approve)
    triggers = _via("triggers", TriggerService.triggers)
    replay = _blocking("replay", ReplayService.replay)
    replay_live = _blocking("replay", ReplayService.replay_live)
    diff_runs = _via("replay", ReplayService.diff_runs)
    evaluate = _blocking("evals", EvalService.evaluate)
    stress = _blocking("evals", EvalService.stress)
    tune = _blocking("evals", EvalService.tune)
    blueprint_create = _via("blueprints", BlueprintService.create)
    blueprint_lint = _via("blueprints", BlueprintService.lint)
    blueprint_render = _via("blueprints", BlueprintService.render)
    blueprint_pack = _via("blueprints", BlueprintService.pack)
    blueprint_install = _via("blueprints", BlueprintService.install)
    blueprint_install_locked = _via("blueprints", BlueprintService.install_locked)
    blueprint_upgrade = _via("blueprints", BlueprintService.upgrade)
    blueprint_uninstall = _via("blueprints", BlueprintService.uninstall)
    blueprint_list = _via("blueprints", BlueprintService.installed)
    blueprint_trust = _via("blueprints", BlueprintService.trust)
    blueprint_publish = _via("blueprints", BlueprintService.publish)
    blueprint_search = _via("blueprints", BlueprintService.search)
    blueprint_info = _via("blueprints", BlueprintService.info)
    registry_add = _via("blueprints", BlueprintService.registry_add)
    registries = _via("blueprints", BlueprintService.registries)
    usage = _via("blueprints", BlueprintService.usage)
    analytics = _via("analytics", AnalyticsService.analytics)
    stats = _via("analytics", AnalyticsService.stats)
    query = _via("analytics", AnalyticsService.query)
    export = _via("analytics", AnalyticsService.export)
    api_key_create = _via("auth", AuthService.create_key)
    db_status = _via("db", DbService.status)
    db_migrate = _via("db", DbService.migrate)
    db_copy = _via("db", DbService.copy)
    api_keys = _via("auth", AuthService.keys)
    api_key_revoke = _via("auth", AuthService.revoke_key)
    audit_records = _via("auth", AuthService.audit_records)


class AsyncContext(_Base):
    """afctl's engine for one workspace and environment, for async code: the same methods as
    `Context`, each a coroutine. Runs use the caller's event loop.

    Args:
        workspace: the repository root or `.afctl/` folder; found by walking up when omitted.
        env: the environment name (`AFCTL_ENV`, default `default`).
        console: where progress, streamed text and questions go (see `afctl.console`).
    """

    async def aclose(self) -> None:
        """Commit what is pending and close the context's connections and shared clients."""
        try:
            await self._services.runs.clients.aclose()
        finally:
            self._finalizer()

    async def __aenter__(self) -> AsyncContext:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    validate = _awaiting("manifests", ManifestService.validate)
    load = _awaiting("manifests", ManifestService.load)
    plan = _awaiting("state", StateService.plan)
    apply = _awaiting("state", StateService.apply)
    apply_saved_plan = _awaiting("state", StateService.apply_saved_plan)
    diff = _awaiting("state", StateService.diff)
    get = _awaiting("state", StateService.get)
    describe = _awaiting("state", StateService.describe)
    history = _awaiting("state", StateService.history)
    delete = _awaiting("state", StateService.delete)
    rollback = _awaiting("state", StateService.rollback)
    force_unlock = _awaiting("state", StateService.force_unlock)
    knowledge_index = _awaiting("knowledge", KnowledgeService.index)
    knowledge_build = _awaiting("knowledge", KnowledgeService.build)
    knowledge_query = _awaiting("knowledge", KnowledgeService.query)
    prompt_log = _awaiting("logs", LogService.open)
    runs = _awaiting("logs", LogService.runs)
    transcript = _awaiting("logs", LogService.transcript)
    log_sizes = _awaiting("logs", LogService.sizes)
    prune_logs = _awaiting("logs", LogService.prune)
    vacuum_logs = _awaiting("logs", LogService.vacuum)
    run = _awaiting("runs", RunService.run)
    run_workflow = _awaiting("runs", RunService.run_workflow)
    resume = _awaiting("runs", RunService.resume)
    approve = _awaiting("runs", RunService.approve)
    triggers = _awaiting("triggers", TriggerService.triggers)
    replay = _awaiting("replay", ReplayService.replay)
    replay_live = _awaiting("replay", ReplayService.replay_live)
    diff_runs = _awaiting("replay", ReplayService.diff_runs)
    evaluate = _awaiting("evals", EvalService.evaluate)
    stress = _awaiting("evals", EvalService.stress)
    tune = _awaiting("evals", EvalService.tune)
    blueprint_create = _awaiting("blueprints", BlueprintService.create)
    blueprint_lint = _awaiting("blueprints", BlueprintService.lint)
    blueprint_render = _awaiting("blueprints", BlueprintService.render)
    blueprint_pack = _awaiting("blueprints", BlueprintService.pack)
    blueprint_install = _awaiting("blueprints", BlueprintService.install)
    blueprint_install_locked = _awaiting("blueprints", BlueprintService.install_locked)
    blueprint_upgrade = _awaiting("blueprints", BlueprintService.upgrade)
    blueprint_uninstall = _awaiting("blueprints", BlueprintService.uninstall)
    blueprint_list = _awaiting("blueprints", BlueprintService.installed)
    blueprint_trust = _awaiting("blueprints", BlueprintService.trust)
    blueprint_publish = _awaiting("blueprints", BlueprintService.publish)
    blueprint_search = _awaiting("blueprints", BlueprintService.search)
    blueprint_info = _awaiting("blueprints", BlueprintService.info)
    registry_add = _awaiting("blueprints", BlueprintService.registry_add)
    registries = _awaiting("blueprints", BlueprintService.registries)
    usage = _awaiting("blueprints", BlueprintService.usage)
    analytics = _awaiting("analytics", AnalyticsService.analytics)
    stats = _awaiting("analytics", AnalyticsService.stats)
    query = _awaiting("analytics", AnalyticsService.query)
    export = _awaiting("analytics", AnalyticsService.export)
    api_key_create = _awaiting("auth", AuthService.create_key)
    db_status = _awaiting("db", DbService.status)
    db_migrate = _awaiting("db", DbService.migrate)
    db_copy = _awaiting("db", DbService.copy)
    api_keys = _awaiting("auth", AuthService.keys)
    api_key_revoke = _awaiting("auth", AuthService.revoke_key)
    audit_records = _awaiting("auth", AuthService.audit_records)


def validate(paths: PathArg | Sequence[PathArg], *, use_cache: bool = False) -> ValidationResult:
    """Validate manifests with a default Context (no cache unless asked)."""
    with Context() as context:
        return context.validate(paths, use_cache=use_cache)


def load(paths: PathArg | Sequence[PathArg]) -> ManifestSet:
    """Load and validate manifests with a default Context; raises ManifestError if invalid."""
    with Context() as context:
        return context.load(paths)


def run(target: str, user_input: str, **options: Any) -> RunResult:
    """Run an agent with a default Context (see `Context.run` for the options)."""
    with Context(env=options.pop("env", None)) as context:
        return context.run(target, user_input, **options)


def _shut_down(services: Services, loop: ContextLoop | None) -> None:
    """Close what a context holds: the clients its runs shared (on their loop), then the
    databases. Called once, by close(), aclose() or when the context is collected."""
    try:
        if loop is not None:
            loop.close(services.runs.clients.aclose())
    finally:
        services.close()

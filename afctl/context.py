"""`Context`: the one façade the CLI, the Python API and tests drive.

A command parses its flags, calls one method here, and renders what comes back. Nothing here
prints; problems come back as values (diagnostics, plans) or as `afctl.errors` exceptions.
Questions for the user (confirming an apply) are callbacks the caller supplies.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from afctl.errors import AfctlError, ManifestError, UsageError
from afctl.sync import run_sync
from afctl.workspace import WORKSPACE_DIR, find_workspace

T = TypeVar("T")

if TYPE_CHECKING:
    from afctl.analytics.logs import LogAnalytics, Table
    from afctl.blueprints.install import Prepared
    from afctl.blueprints.package import Blueprint, Rendered
    from afctl.blueprints.trust import TrustReview
    from afctl.diagnostics import Diagnostic
    from afctl.eval.runner import CaseResult, EvalResult
    from afctl.eval.stress import StressReport, StressStep
    from afctl.eval.suite import Suite
    from afctl.eval.target import EvalTarget
    from afctl.eval.tune import TuneReport
    from afctl.knowledge.index import BuildReport, Hit, KnowledgeIndex
    from afctl.manifests.model import ManifestSet
    from afctl.manifests.validate import Progress, ValidationResult
    from afctl.promptlog.store import EventRecord, PromptLog, RunRecord
    from afctl.providers.types import Message
    from afctl.replay.diff import RunDiff
    from afctl.replay.offline import ReplayReport
    from afctl.runtime.agent import Approver, RunResult
    from afctl.runtime.environment import Catalog, RunEnvironment
    from afctl.runtime.workflow import WorkflowResult
    from afctl.safety.capabilities import Grants
    from afctl.state.plan import Plan
    from afctl.state.store import (
        AppliedResource,
        ApplyRecord,
        LockInfo,
        Revision,
        StateStore,
    )
    from afctl.triggers.definitions import Trigger

PathArg = str | os.PathLike[str]
Confirm = Callable[["Plan"], bool]
"""Shown a plan with changes; returns whether to apply it."""
DEFAULT_LOCK_TIMEOUT_S = 10.0
_ENV_NAME = re.compile(r"[a-z0-9]([-_a-z0-9]{0,61}[a-z0-9])?")


def _nothing_applied() -> UsageError:
    return UsageError(
        "nothing has been applied in this workspace yet",
        hint="apply manifests first: afctl apply -f .",
    )


def _as_list(paths: PathArg | Sequence[PathArg]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


@dataclass(frozen=True)
class KnowledgeBuild:
    """A knowledge pack's index build: its report, or why it could not be built."""

    pack: str
    report: BuildReport | None
    error: str | None = None


@dataclass(frozen=True)
class ApplyOutcome:
    """What an apply (or delete, or rollback) did."""

    plan: Plan
    record: ApplyRecord | None
    """None when there was nothing to do or the user declined."""
    knowledge: tuple[KnowledgeBuild, ...] = ()
    """The knowledge packs brought up to date with their sources after the apply."""

    @property
    def applied(self) -> bool:
        return self.record is not None


@dataclass(frozen=True)
class ResourceDiff:
    """`afctl diff` of one resource: the plan's change and a unified YAML diff."""

    action: str
    ref: str
    text: str


@dataclass(frozen=True)
class Transcript:
    """`afctl runs show`: a run, its payloads (input, output, vars) and its events in order."""

    run: RunRecord
    payload: dict[str, Any]
    events: list[EventRecord]


@dataclass(frozen=True)
class Description:
    """`afctl describe`: a resource, its history and where it came from."""

    resource: AppliedResource
    revisions: list[Revision]
    last_apply: ApplyRecord | None


class Context:
    """afctl's engine for one workspace and environment.

    Args:
        workspace: the repository root or `.afctl/` folder; found by walking up when omitted.
        env: the environment name (`AFCTL_ENV`, default `default`).
    """

    def __init__(self, workspace: PathArg | None = None, env: str | None = None) -> None:
        self.workspace: Path | None = find_workspace(workspace)
        self.env = env or os.environ.get("AFCTL_ENV") or "default"
        if not _ENV_NAME.fullmatch(self.env):
            raise UsageError(
                f"--env {self.env}: not a valid environment name",
                hint="use lowercase letters, digits, '-' and '_' (e.g. prod, staging-eu)",
            )

    @property
    def root(self) -> Path:
        """The repository root: the folder holding `.afctl/` (the current one if none yet)."""
        return self.workspace.parent if self.workspace is not None else Path.cwd()

    # -- manifests -------------------------------------------------------------------------

    def validate(
        self,
        paths: PathArg | Sequence[PathArg],
        *,
        use_cache: bool = True,
        progress: Progress | None = None,
    ) -> ValidationResult:
        """Check manifests (YAML, schema, references); never raises for problems in them.

        Args:
            paths: files, folders, or "-" for stdin.
            use_cache: reuse results of unchanged files (see `afctl.manifests.cache`).
            progress: called with (files done, files in all) while checking.

        Raises:
            UsageError: a path does not exist or holds no manifests.
        """
        from afctl._version import __version__
        from afctl.manifests.cache import ValidationCache, default_cache_path
        from afctl.manifests.schema import schema_hash
        from afctl.manifests.validate import validate_paths

        cache = None
        if use_cache:
            from afctl.plugin_fingerprint import plugins_fingerprint

            stamp = f"{__version__}:{schema_hash()}:{plugins_fingerprint()}"
            cache = ValidationCache(default_cache_path(self.workspace), stamp)
        result, _ = validate_paths(_as_list(paths), cache, progress)
        return result

    def load(self, paths: PathArg | Sequence[PathArg]) -> ManifestSet:
        """Load and validate manifests.

        Raises:
            ManifestError: any manifest is invalid; `diagnostics` lists every problem.
            UsageError: a path does not exist or holds no manifests.
        """
        from afctl.manifests.model import ManifestSet
        from afctl.manifests.validate import validate_paths

        result, manifests = validate_paths(_as_list(paths), None)
        if not result.valid:
            raise ManifestError(result.diagnostics, sources=result.sources)
        return ManifestSet(manifests)

    # -- state -----------------------------------------------------------------------------

    def _open_state(self, *, create: bool) -> StateStore | None:
        from afctl.state.store import StateStore

        if not create and not self._has_state():
            return None
        if self.workspace is None:
            self.workspace = Path.cwd() / WORKSPACE_DIR
        return StateStore.open(self.workspace, create=True)

    def _has_state(self) -> bool:
        from afctl.state.store import STATE_FILE

        return self.workspace is not None and (self.workspace / STATE_FILE).exists()

    def _require_state(self) -> StateStore:
        store = self._open_state(create=False)
        if store is None:
            raise _nothing_applied()
        return store

    def _snapshot(
        self, store: StateStore | None
    ) -> tuple[dict[tuple[str, str], AppliedResource], int, str | None]:
        if store is None:
            return {}, 0, None
        applied = store.resources(self.env, documents=False)
        return applied, store.serial(self.env), store.workspace_id

    def _plan_with(self, store: StateStore | None, paths: list[str], prune: bool) -> Plan:
        from afctl.state.plan import build_plan, source_set_of

        desired = self.load(paths)
        applied, serial, workspace_id = self._snapshot(store)
        return build_plan(
            desired,
            applied,
            env=self.env,
            workspace_id=workspace_id,
            serial=serial,
            source_set=source_set_of(paths, self.root),
            prune=prune,
        )

    def plan(self, paths: PathArg | Sequence[PathArg], *, prune: bool = False) -> Plan:
        """What applying `paths` would change; writes nothing.

        Raises:
            ManifestError: the manifests are invalid.
            ProtectedResources: the plan would delete protected resources.
        """
        store = self._open_state(create=False)
        try:
            return self._plan_with(store, _as_list(paths), prune)
        finally:
            if store is not None:
                store.close()

    def _apply_locked(
        self,
        make_plan: Callable[[StateStore], Plan],
        *,
        confirm: Confirm | None,
        lock_timeout: float,
        command: str,
    ) -> ApplyOutcome:
        from afctl.state.apply import apply_plan

        store = self._open_state(create=True)
        assert store is not None
        try:
            lock = store.acquire_lock(command, lock_timeout)
            try:
                plan = make_plan(store)
                if not plan.has_changes or (confirm is not None and not confirm(plan)):
                    return ApplyOutcome(plan, None)
                return ApplyOutcome(plan, apply_plan(store, plan, lock, command))
            finally:
                store.release_lock(lock)
        finally:
            store.close()

    def apply(
        self,
        paths: PathArg | Sequence[PathArg],
        *,
        prune: bool = False,
        confirm: Confirm | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        command: str = "afctl apply",
    ) -> ApplyOutcome:
        """Plan `paths` under the workspace lock and apply the plan in one transaction.

        `confirm` sees the plan first and may decline; without it, the plan is applied.

        Raises:
            ManifestError: the manifests are invalid.
            ProtectedResources: the plan would delete protected resources.
            StateConflict: the workspace stayed locked for `lock_timeout` seconds.
        """
        files = _as_list(paths)
        outcome = self._apply_locked(
            lambda store: self._plan_with(store, files, prune),
            confirm=confirm,
            lock_timeout=lock_timeout,
            command=command,
        )
        return self._with_knowledge(outcome)

    def _with_knowledge(self, outcome: ApplyOutcome) -> ApplyOutcome:
        """After an apply, bring every applied knowledge pack up to date with its sources
        (incremental: a pack whose files did not change costs a hash of each)."""
        from dataclasses import replace

        store = self._open_state(create=False)
        if store is None:
            return outcome
        with store:
            packs = store.documents_of_kind(self.env, "KnowledgePack")
        if not packs:
            return outcome
        from afctl.knowledge.index import index_type

        builds = []
        needs_models = any(index_type(d.get("spec") or {}) != "fts" for d in packs.values())
        catalog = self._catalog(None) if needs_models else None
        with self.knowledge_index() as index:
            for name, document in packs.items():
                spec = document.get("spec") or {}
                try:
                    with self._embedder(spec, catalog) as embed:
                        report = index.build(name, spec, self.root, embed)
                    builds.append(KnowledgeBuild(name, report))
                except (AfctlError, OSError) as exc:
                    builds.append(KnowledgeBuild(name, None, str(exc)))
        return replace(outcome, knowledge=tuple(builds))

    def _embedder(self, spec: dict[str, Any], catalog: Catalog | None) -> Any:
        """The pack's embedding model as a callable (a context manager); a no-op one for
        full-text packs."""
        import contextlib

        from afctl.knowledge.index import index_type

        if index_type(spec) == "fts":
            return contextlib.nullcontext(None)
        from afctl.knowledge.embed import Embedder
        from afctl.runtime.environment import RunEnvironment
        from afctl.safety.secrets import Secrets

        model = str((spec.get("index") or {}).get("embedding_model"))
        catalog = catalog if catalog is not None else self._catalog(None)
        return Embedder(model, RunEnvironment(self.root, Secrets(), catalog))

    def knowledge_index(self) -> KnowledgeIndex:
        """The workspace's knowledge index (`.afctl/knowledge.db`)."""
        from afctl.knowledge.index import KnowledgeIndex

        return KnowledgeIndex.open(self._workspace_dir())

    def knowledge_build(
        self, name: str, *, paths: PathArg | Sequence[PathArg] | None = None
    ) -> BuildReport:
        """Index knowledge pack `name` (from `paths`, or the applied state), incrementally.

        Raises:
            UsageError: there is no such pack, or a source glob leaves the repository.
        """
        catalog = self._catalog(_as_list(paths) if paths else None)
        spec = self._knowledge_spec(name, catalog, paths)
        with self.knowledge_index() as index, self._embedder(spec, catalog) as embed:
            return index.build(name, spec, self.root, embed)

    def knowledge_query(
        self,
        name: str,
        question: str,
        *,
        k: int | None = None,
        paths: PathArg | Sequence[PathArg] | None = None,
    ) -> list[Hit]:
        """The chunks of pack `name` that best answer `question`, best first; the index is
        brought up to date first.

        Raises:
            UsageError: there is no such pack.
        """
        from afctl.knowledge.index import index_type

        catalog = self._catalog(_as_list(paths) if paths else None)
        spec = self._knowledge_spec(name, catalog, paths)
        retrieval = spec.get("retrieval") or {}
        with self.knowledge_index() as index, self._embedder(spec, catalog) as embed:
            index.build(name, spec, self.root, embed)
            return index.search(
                name,
                question,
                k or int(retrieval.get("top_k", 5)),
                retrieval.get("min_score"),
                mode=index_type(spec),
                embed=embed,
            )

    def _knowledge_spec(
        self, name: str, catalog: Catalog, paths: PathArg | Sequence[PathArg] | None
    ) -> dict[str, Any]:
        document = catalog.find("KnowledgePack", name)
        if document is None:
            where = "in the given files" if paths else f"in environment {self.env}"
            raise UsageError(
                f"knowledgepack/{name} is not defined {where}",
                hint="apply it first (afctl apply -f .), or pass its manifest with -f",
            )
        spec: dict[str, Any] = document.get("spec") or {}
        return spec

    @staticmethod
    def read_plan(path: PathArg) -> Plan:
        """A plan saved with `save_plan` (`afctl plan --out`)."""
        import json

        from afctl.state.plan import Plan

        try:
            data = json.loads(Path(path).read_text("utf-8"))
        except OSError as exc:
            raise UsageError(f"cannot read the plan {os.fspath(path)}: {exc.strerror}") from None
        except ValueError:
            raise UsageError(f"{os.fspath(path)} is not a plan file (not JSON)") from None
        return Plan.from_dict(data)

    @staticmethod
    def save_plan(plan: Plan, path: PathArg) -> None:
        """Write a plan file whole or not at all.

        Raises:
            UsageError: it cannot be written there.
        """
        import json

        from afctl.files import write_atomically

        try:
            write_atomically(Path(path), json.dumps(plan.to_dict(), indent=2) + "\n")
        except OSError as exc:
            raise UsageError(f"--out {path}: cannot write it: {exc.strerror}") from None

    def apply_saved_plan(
        self,
        plan: Plan,
        *,
        confirm: Confirm | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        command: str = "afctl apply PLAN",
    ) -> ApplyOutcome:
        """Apply exactly `plan`, or refuse it when the state moved on since it was made.

        Raises:
            StateConflict: the plan is stale, or for another workspace or environment.
        """
        from afctl.errors import StateConflict
        from afctl.state.apply import check_plan_applies

        if plan.env != self.env:
            raise StateConflict(
                f"the plan is for environment {plan.env}, not {self.env}",
                hint=f"apply it with --env {plan.env}",
            )

        def checked(store: StateStore) -> Plan:
            check_plan_applies(store, plan)
            return plan

        return self._with_knowledge(
            self._apply_locked(checked, confirm=confirm, lock_timeout=lock_timeout, command=command)
        )

    def diff(
        self, paths: PathArg | Sequence[PathArg], *, prune: bool = False
    ) -> list[ResourceDiff]:
        """Unified YAML diffs of applied versus desired, one per resource that would change."""
        from afctl.state.diff import unified_yaml_diff

        plan = self.plan(paths, prune=prune)
        diffs = []
        for change in plan.changes:
            before = f"applied/{change.ref}" if change.action != "create" else "/dev/null"
            after = f"desired/{change.ref}" if change.action != "delete" else "/dev/null"
            text = unified_yaml_diff(change.before, change.document, before, after)
            diffs.append(ResourceDiff(change.action, change.ref, text))
        return diffs

    def get(
        self, kind: str | None = None, name: str | None = None, selector: str | None = None
    ) -> list[AppliedResource]:
        """Applied resources of this environment, optionally of one kind, name or label set."""
        from afctl.manifests.kinds import KINDS, find_kind
        from afctl.state.selectors import parse_selector

        wanted_kind = find_kind(kind) if kind and kind.lower() != "all" else None
        matches = parse_selector(selector) if selector else None
        store = self._open_state(create=False)
        if store is None:
            return []
        with store:
            found = [
                r
                for (k, n), r in store.resources(self.env).items()
                if (wanted_kind is None or k == wanted_kind)
                and (name is None or n == name)
                and (matches is None or matches(r.labels))
            ]
        if name is not None and not found:
            label = f"{(wanted_kind or 'resource').lower()}/{name}"
            raise UsageError(f"{label} is not applied in environment {self.env}")
        order = {k: i for i, k in enumerate(KINDS)}
        return sorted(found, key=lambda r: (order.get(r.kind, 99), r.name))

    def describe(self, kind: str, name: str) -> Description:
        (resource,) = self.get(kind, name)
        with self._require_state() as store:
            revisions = store.revisions(self.env, resource.kind, name)
            return Description(resource, revisions, store.apply_record(resource.apply_id))

    def history(self, kind: str, name: str) -> list[Revision]:
        """Every revision of a resource, deletions included, oldest first."""
        from afctl.manifests.kinds import find_kind

        kind = find_kind(kind)
        with self._require_state() as store:
            revisions = store.revisions(self.env, kind, name)
        if not revisions:
            raise UsageError(f"{kind.lower()}/{name} has no history in environment {self.env}")
        return revisions

    def delete(
        self,
        refs: Sequence[tuple[str, str]] = (),
        paths: PathArg | Sequence[PathArg] = (),
        *,
        confirm: Confirm | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        command: str = "afctl delete",
    ) -> ApplyOutcome:
        """Remove resources from the applied state (their history is kept).

        Raises:
            UsageError: a resource is not applied.
            ProtectedResources: one of them is protected.
        """
        from afctl.state.plan import build_delete_plan

        targets = list(refs)
        files = _as_list(paths)
        if files:
            targets += [(m.kind, m.name) for m in self.load(files)]
        if not targets:
            raise UsageError("nothing to delete", hint="name KIND/NAME or pass -f PATH")
        if not self._has_state():
            raise _nothing_applied()

        def make(store: StateStore) -> Plan:
            applied, serial, workspace_id = self._snapshot(store)
            return build_delete_plan(
                targets, applied, env=self.env, workspace_id=workspace_id, serial=serial
            )

        return self._apply_locked(make, confirm=confirm, lock_timeout=lock_timeout, command=command)

    def rollback(
        self,
        kind: str,
        name: str,
        to: int,
        *,
        confirm: Confirm | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        command: str = "afctl rollback",
    ) -> ApplyOutcome:
        """Apply revision `to` of a resource again, as a new revision.

        Raises:
            UsageError: no such revision, or it was a deletion.
        """
        from afctl.manifests.model import Manifest
        from afctl.state.plan import build_rollback_plan

        revisions = {r.revision: r for r in self.history(kind, name)}
        old = revisions.get(to)
        if old is None or old.document is None:
            what = "is a deletion" if old is not None else "does not exist"
            raise UsageError(
                f"revision {to} of {kind.lower()}/{name} {what}",
                hint="afctl history " + f"{kind.lower()}/{name} lists the revisions",
            )
        document = old.document
        kind = str(document["kind"])
        manifest = Manifest(kind, name, document, old.source_file or "", 0)

        def make(store: StateStore) -> Plan:
            applied, serial, workspace_id = self._snapshot(store)
            return build_rollback_plan(
                manifest, to, applied, env=self.env, workspace_id=workspace_id, serial=serial
            )

        return self._apply_locked(make, confirm=confirm, lock_timeout=lock_timeout, command=command)

    # -- runs ------------------------------------------------------------------------------

    def _catalog(self, paths: list[str] | None) -> Catalog:
        from afctl.runtime.environment import Catalog

        if paths:
            return Catalog.of((m.kind, m.name, m.data) for m in self.load(paths))
        store = self._open_state(create=False)
        if store is None:
            return Catalog({})
        with store:
            resources = store.resources(self.env)
            return Catalog.of((r.kind, r.name, r.document) for r in resources.values())

    def _state_serial(self) -> int:
        """The applied state's serial in this environment (0 with no state)."""
        store = self._open_state(create=False)
        if store is None:
            return 0
        with store:
            return store.serial(self.env)

    def prompt_log(self) -> PromptLog:
        """The workspace's prompt log (created with the workspace if there is none yet)."""
        from afctl.promptlog.store import PromptLog

        return PromptLog.open(self._workspace_dir())

    def _workspace_dir(self) -> Path:
        """The workspace folder, `.afctl` in the current directory when none was found."""
        if self.workspace is None:
            self.workspace = Path.cwd() / WORKSPACE_DIR
        return self.workspace

    def runs(
        self, *, agent: str | None = None, status: str | None = None, limit: int = 20
    ) -> list[RunRecord]:
        """Recent runs from the prompt log, newest first."""
        with self.prompt_log() as log:
            return log.runs(agent=agent, status=status, limit=limit)

    def transcript(self, run_id: str) -> Transcript:
        """A run (by id or unique id prefix) with its input, output and every event.

        Raises:
            UsageError: no run, or several, match.
        """
        with self.prompt_log() as log:
            record = log.run(run_id)
            return Transcript(record, log.payload(record.id), list(log.events(record.id)))

    def run(
        self,
        target: str | None,
        user_input: str,
        *,
        paths: PathArg | Sequence[PathArg] | None = None,
        variables: dict[str, Any] | None = None,
        session: str | None = None,
        model: str | None = None,
        on_text: Callable[[str], None] | None = None,
        approver: Approver | None = None,
    ) -> RunResult:
        """Run an agent (`agent/NAME`) on one input; the run is recorded in the prompt log.

        Tool calls that need approval are put to `approver`; without one the run pauses with
        status `awaiting_approval` (see `approve`).

        The agent and what it uses come from `paths` when given, else from the applied state of
        this environment; with `paths` holding exactly one agent, `target` may be None. A failing
        run returns a result with status `failed`; only mistakes in the request itself (an
        unknown agent, a bad flag) raise.

        Raises:
            UsageError: the target is not an agent that is available.
        """

        from afctl.manifests.kinds import parse_ref
        from afctl.runtime.agent import AgentRun, RunOptions

        catalog = self._catalog(_as_list(paths) if paths else None)
        if target is None:
            agents = list(catalog.of_kind("Agent")) if paths else []
            if len(agents) != 1:
                raise UsageError(
                    "name the agent to run",
                    hint='afctl run agent/NAME "input" (or -f with one agent)',
                )
            target = f"agent/{agents[0]}"
        kind, name = parse_ref(target)
        if kind != "Agent":
            raise UsageError(f"afctl run runs agents; {target} is a {kind}")
        if catalog.find("Agent", name) is None:
            where = "in the given files" if paths else f"in environment {self.env}"
            raise UsageError(
                f"agent/{name} is not defined {where}",
                hint="apply it first (afctl apply -f .), or pass its manifest with -f",
            )
        variables = dict(variables or {})
        environment = self._run_environment(catalog, variables)
        with self.prompt_log() as log:
            options = RunOptions(variables, session, model, on_text, self.env, approver=approver)
            return run_sync(AgentRun(name, environment, log, options).run(user_input))

    def run_workflow(
        self,
        target: str,
        inputs: dict[str, Any],
        *,
        paths: PathArg | Sequence[PathArg] | None = None,
        variables: dict[str, Any] | None = None,
        typed: bool = False,
    ) -> WorkflowResult:
        """Run a workflow (`workflow/NAME`) on `inputs`; the run and every step's child run are
        recorded in the prompt log. Inputs given as text (`typed=False`, from `--input k=v`)
        are read as YAML scalars where the workflow's schema wants a non-string.

        Raises:
            UsageError: the target is not an available workflow, or the inputs do not match
                its `inputs` schema.
        """

        from afctl.manifests.kinds import parse_ref
        from afctl.runtime.workflow import WorkflowOptions, WorkflowRun, coerce_inputs

        catalog = self._catalog(_as_list(paths) if paths else None)
        kind, name = parse_ref(target)
        if kind != "Workflow" or catalog.find("Workflow", name) is None:
            where = "in the given files" if paths else f"in environment {self.env}"
            raise UsageError(
                f"{target} is not a workflow defined {where}",
                hint="apply it first (afctl apply -f .), or pass its manifest with -f",
            )
        spec = catalog.get("Workflow", name).get("spec") or {}
        if not typed:
            inputs = coerce_inputs(inputs, spec.get("inputs"))
        variables = dict(variables or {})
        environment = self._run_environment(catalog, variables)
        with self.prompt_log() as log:
            options = WorkflowOptions(variables, self.env)
            engine = WorkflowRun(name, environment, log, options)
            return run_sync(_sharing_mcp(environment, engine.run(inputs)))

    def resume(self, run_id: str) -> WorkflowResult:
        """Go on with a workflow run that a crash interrupted, as the same run: the steps it
        finished are not run again, and it runs on the revision it started with.

        Raises:
            UsageError: no such run, or it is not an interrupted workflow run.
        """

        from afctl.runtime.environment import Catalog
        from afctl.runtime.workflow import StepState, WorkflowOptions, WorkflowRun

        with self.prompt_log() as log:
            record = log.run(run_id)
            if record.kind != "workflow":
                raise UsageError(
                    f"run {record.id} is a {record.kind} run; resume goes on with workflows"
                )
            if record.status != "interrupted":
                raise UsageError(
                    f"run {record.id} is {record.status}; only an interrupted workflow run resumes",
                    hint="start it again with afctl run" if record.status == "failed" else None,
                )
            bundle = log.revision(record.revision_hash or "")
            payload = log.payload(record.id)
            events = list(log.events(record.id))
            done: dict[str, StepState] = {}
            for event in events:
                if event.type == "step":
                    state = StepState(**{k: v for k, v in event.payload.items()
                                         if k in StepState.__dataclass_fields__})  # fmt: skip
                    done[state.id] = state
            catalog = Catalog.of_bundle(bundle)
            saved = payload.get("vars") or {}
            variables = dict(saved.get("vars") or {})
            environment = self._run_environment(catalog, variables)
            name = record.target.removeprefix("workflow/")
            options = WorkflowOptions(variables, record.env or self.env, record.parent_id)
            engine = WorkflowRun(name, environment, log, options, run_id=record.id)
            engine.skip_seq(max((e.seq for e in events), default=0))
            return run_sync(
                _sharing_mcp(environment, engine.resume(dict(saved.get("inputs") or {}), done))
            )

    def triggers(self) -> list[tuple[Trigger, datetime.datetime | None]]:
        """The triggers of the workflows applied in this environment, each with its next fire
        time (schedules only).

        Raises:
            UsageError: a trigger is invalid (two webhooks on one path, a bad time zone).
        """
        from afctl.triggers.definitions import next_fire, triggers_of

        now = datetime.datetime.now(datetime.UTC)
        found = triggers_of(dict(self._catalog(None).of_kind("Workflow")))
        return [(t, next_fire(t, now) if t.type == "schedule" else None) for t in found]

    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 8787,
        *,
        on_ready: Callable[[str, int], None] | None = None,
        variables: dict[str, Any] | None = None,
    ) -> None:
        """Run the triggers of the applied workflows until SIGTERM or SIGINT: webhooks (and
        /healthz, /metrics) on host:port, schedules, file watches. `on_ready` is told the
        server's address and how many triggers run.

        Raises:
            UsageError: nothing to serve, a webhook secret is not set, or the port is taken.
        """

        from afctl.triggers.definitions import triggers_of
        from afctl.triggers.serve import Launcher, serve

        catalog = self._catalog(None)
        found = triggers_of(dict(catalog.of_kind("Workflow")))
        if not found:
            raise UsageError(
                f"no workflow applied in environment {self.env} declares triggers",
                hint="add spec.triggers to a workflow and afctl apply it",
            )
        variables = dict(variables or {})
        environment = self._run_environment(catalog, variables)
        seen = [self._state_serial()]

        def reload() -> Catalog | None:
            """The applied resources, when an apply changed them since the last look."""
            serial = self._state_serial()
            if serial == seen[0]:
                return None
            seen[0] = serial
            environment.grants = self._grants()  # trust may have changed with it
            return self._catalog(None)

        with self.prompt_log() as log:
            launcher = Launcher(environment, log, self.env, variables)

            def ready(address: str) -> None:
                if on_ready is not None:
                    on_ready(address, len(found))

            try:
                run_sync(_sharing_mcp(environment, serve(
                    found, launcher, self.root, host, port, on_ready=ready, reload=reload,
                )))  # fmt: skip
            except OSError as exc:
                raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None

    def blueprint_create(self, name: str, parent: PathArg = ".") -> Path:
        """A new blueprint folder `parent/name` to start from (lints clean, evals pass).

        Raises:
            UsageError: a bad name, or the folder exists.
        """
        from afctl.blueprints.create import create

        return create(name, Path(parent))

    def blueprint_lint(self, folder: PathArg) -> tuple[Blueprint, list[Diagnostic]]:
        """A blueprint folder and its problems (none: it is ready to pack).

        Raises:
            UsageError: there is no blueprint there.
            ManifestError: its blueprint.yaml is invalid.
        """
        from afctl.blueprints.package import lint, load

        blueprint = load(Path(folder))
        return blueprint, lint(blueprint)

    def blueprint_render(
        self, source: PathArg, sets: Sequence[str] = (), files: Sequence[str] = ()
    ) -> tuple[Blueprint, list[Rendered]]:
        """The manifests of a blueprint (a folder, or an `.afbp` archive, checked and
        extracted to a temporary folder first) rendered from its defaults, values files and
        `--set` values (the right-most wins).

        Raises:
            UsageError: no blueprint, a refused archive, or values that do not fit.
            ManifestError: blueprint.yaml is invalid, or a template fails.
        """
        import shutil
        import tempfile

        from afctl.blueprints.archive import extract
        from afctl.blueprints.package import load, render, values_of

        path = Path(source)
        if path.is_dir():
            blueprint = load(path)
            return blueprint, render(blueprint, values_of(blueprint, list(sets), list(files)))
        scratch = Path(tempfile.mkdtemp(prefix="afctl-render-"))
        try:
            folder, _ = extract(path, scratch)
            blueprint = load(folder)
            return blueprint, render(blueprint, values_of(blueprint, list(sets), list(files)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def blueprint_pack(
        self, folder: PathArg, output: PathArg | None = None
    ) -> tuple[Path, dict[str, Any]]:
        """Pack a blueprint that lints clean into a reproducible `.afbp` archive (by default
        `NAME-VERSION.afbp` in the current folder); returns its path and MANIFEST.json.

        Raises:
            ManifestError: the blueprint has problems (afctl blueprint lint lists them).
            UsageError: the archive cannot be written.
        """
        from afctl.blueprints.archive import pack

        blueprint, problems = self.blueprint_lint(folder)
        if any(p.is_error for p in problems):
            raise ManifestError(
                problems, f"blueprint {blueprint.name} has problems; fix them first"
            )
        target = (
            Path(output) if output else Path.cwd() / f"{blueprint.name}-{blueprint.version}.afbp"
        )
        try:
            return target, pack(blueprint, target)
        except OSError as exc:
            raise UsageError(f"cannot write {target}: {exc.strerror}") from None

    def blueprint_install(
        self,
        source: PathArg,
        *,
        sets: Sequence[str] = (),
        files: Sequence[str] = (),
        trust: bool = False,
        dry_run: bool = False,
        confirm: Confirm | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> tuple[ApplyOutcome, Prepared]:
        """Install a blueprint (a folder or an `.afbp` archive): check it, place it in the
        workspace's blueprint store, render it from the values, label its resources
        `afctl/blueprint=NAME` and `afctl/blueprint-version=VERSION`, then plan and apply them
        like `apply` (as the source set `blueprint/NAME`, so a later install prunes what the
        blueprint no longer renders). `dry_run` plans only. Python tools from the blueprint
        run only once it is trusted (`trust`, or `blueprint_trust`).

        Raises:
            UsageError: a refused archive, values that do not fit, or a resource that another
                source (not this blueprint) applied.
            ManifestError: the rendered manifests are invalid.
            StateConflict: the workspace stayed locked.
        """
        import dataclasses

        from afctl.blueprints.install import (
            discard,
            place,
            prepare,
            source_set,
            trust_placed,
            validate,
        )
        from afctl.blueprints.store import BlueprintStore
        from afctl.blueprints.trust import review
        from afctl.manifests.model import ManifestSet

        store = BlueprintStore(self._workspace_dir())
        if not Path(source).exists():
            if "/" in str(source) or str(source).endswith(".afbp"):
                raise UsageError(
                    f"{source}: no such file or folder",
                    hint="give a blueprint folder, an .afbp archive, or NAME[@RANGE] from a "
                    "registry",
                )
            return self._install_from_registry(str(source), sets=sets, files=files, trust=trust,
                                               dry_run=dry_run, confirm=confirm,
                                               lock_timeout=lock_timeout)  # fmt: skip
        placed = place(Path(source), store)
        folder, digest, created = placed.folder, placed.digest, placed.created
        try:
            prepared = prepare(placed, self.root, list(sets), list(files))
            validate(prepared)
        except BaseException:
            if created:  # a failed install changes nothing
                discard(folder)
            raise
        blueprint = prepared.blueprint
        prepared.review = review(store, blueprint.name, blueprint.version,
                                 blueprint.capabilities, placed.content_digest, placed.manifest,
                                 trust)  # fmt: skip
        prepared.trusted = prepared.review.trusted
        owner = source_set(prepared.blueprint.name)

        def make_plan(state: StateStore | None) -> Plan:
            from afctl.state.plan import build_plan

            applied, serial, workspace_id = self._snapshot(state)
            plan = build_plan(ManifestSet(list(prepared.manifests)), applied, env=self.env,
                              workspace_id=workspace_id, serial=serial, source_set=owner,
                              prune=True)  # fmt: skip
            taken = [c for c in plan.changes
                     if c.previous_owner not in (None, owner) and c.action != "delete"]  # fmt: skip
            if taken:
                first = taken[0]
                raise UsageError(
                    f"{first.kind.lower()}/{first.name} was applied from {first.previous_owner}; "
                    f"installing blueprint {prepared.blueprint.name} would take it over",
                    hint="rename or delete it first; a blueprint only manages its own resources",
                )
            notes = prepared.review.lines() if prepared.review is not None else []
            return dataclasses.replace(plan, notes=tuple(notes))

        if dry_run:
            state = self._open_state(create=False)
            try:
                return ApplyOutcome(make_plan(state), None), prepared
            finally:
                if state is not None:
                    state.close()
                if created:  # a dry run leaves the store as it was
                    discard(folder)
        try:
            outcome = self._apply_locked(make_plan, confirm=confirm, lock_timeout=lock_timeout,
                                         command="afctl blueprint install")  # fmt: skip
        except BaseException:
            if created:
                discard(folder)
            raise
        if outcome.record is None and outcome.plan.has_changes and created:
            discard(folder)  # declined: nothing changes
        if outcome.record is not None or not outcome.plan.has_changes:
            store.record(blueprint.name, {
                "version": blueprint.version, "values": prepared.values,
                "digest": digest, "content_digest": placed.content_digest, "env": self.env,
                "capabilities": blueprint.capabilities.to_dict(),
                "resources": sorted(f"{m.kind.lower()}/{m.name}" for m in prepared.manifests),
            })  # fmt: skip
            if trust:
                trust_placed(store, blueprint.name, blueprint.version, placed.manifest,
                             blueprint.capabilities)  # fmt: skip
            for other in (store.folder / prepared.blueprint.name).iterdir():
                if other.is_dir() and other.name != prepared.blueprint.version:
                    discard(other)  # no resource points at another version any more
        return self._with_knowledge(outcome), prepared

    def _install_from_registry(
        self, reference: str, *, chain: tuple[str, ...] = (), **options: Any
    ) -> tuple[ApplyOutcome, Prepared]:
        """Install NAME[@RANGE] from the workspace's registries: the version afctl.lock holds
        when it is in the range (checked against the locked digest), else the highest in the
        range; what it `requires` is installed first; the resolved versions and digests are
        written to afctl.lock.

        Raises:
            UsageError: nothing matches, a digest differs from the lock or the index, or a
                requirement cannot be met.
        """
        import tempfile

        from afctl.blueprints.registry import Registries
        from afctl.blueprints.semver import Version, satisfies

        name, _, spec = reference.partition("@")
        spec = spec or "*"
        if name in chain:
            raise UsageError(
                "blueprints require each other in a cycle: " + " -> ".join([*chain, name]),
                hint="a blueprint cannot (even indirectly) require itself",
            )
        registries = Registries(self._workspace_dir(), self.root)
        lock = self._read_lock()
        locked = lock.get(name)
        if locked and satisfies(Version(str(locked["version"])), spec):
            registry, version = registries.named(str(locked["registry"])), str(locked["version"])
        else:
            registry, version, _ = registries.resolve(name, spec)
        with tempfile.TemporaryDirectory(prefix="afctl-download-") as scratch:
            archive = Path(scratch) / f"{name}-{version}.afbp"
            digest = registry.download(name, version, archive)
            if locked and locked.get("version") == version and locked.get("digest") != digest:
                raise UsageError(
                    f"{name} {version} from registry {registry.name} differs from afctl.lock",
                    hint="someone republished it; check it, then delete its entry in afctl.lock",
                )
            from afctl.blueprints.archive import inspect
            from afctl.blueprints.install import requirements

            manifest, _ = inspect(archive)
            for needed, wanted in requirements(manifest, archive):
                have = self.blueprint_list().get(needed)
                if have is None or not satisfies(Version(str(have["version"])), wanted):
                    self._install_from_registry(f"{needed}@{wanted}", chain=(*chain, name),
                                                **{**options, "sets": (), "files": ()})  # fmt: skip
            outcome, prepared = self.blueprint_install(archive, **options)
        if not options.get("dry_run"):
            from afctl.blueprints.lock import Lock

            Lock(self.root).pin(name, {"version": version, "digest": digest,
                                       "registry": registry.name})  # fmt: skip
        return outcome, prepared

    def blueprint_install_locked(
        self, names: Sequence[str] = (), **options: Any
    ) -> list[tuple[ApplyOutcome, Prepared]]:
        """Install exactly what `afctl.lock` pins (every blueprint in it, or `names`): each
        locked version from its locked registry, refused when its digest differs from the
        lock's. The options are `blueprint_install`'s (values, trust, dry_run, confirm).

        Raises:
            UsageError: nothing is locked, a name is not, or a digest differs.
        """
        from afctl.blueprints.lock import Lock

        pinned = Lock(self.root).blueprints()
        if not pinned:
            raise UsageError(f"{self.root / 'afctl.lock'} pins no blueprint",
                             hint="afctl blueprint install NAME[@RANGE] writes it")  # fmt: skip
        unknown = [n for n in names if n not in pinned]
        if unknown:
            raise UsageError(f"afctl.lock does not pin {', '.join(unknown)}",
                             hint="locked: " + ", ".join(sorted(pinned)))  # fmt: skip
        return [
            self._install_from_registry(f"{name}@{pinned[name]['version']}", **options)
            for name in (names or sorted(pinned))
        ]

    def _read_lock(self) -> dict[str, dict[str, Any]]:
        from afctl.blueprints.lock import Lock

        return Lock(self.root).blueprints()

    def blueprint_upgrade(
        self,
        name: str,
        *,
        to: str | None = None,
        trust: bool = False,
        dry_run: bool = False,
        confirm: Confirm | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> tuple[ApplyOutcome, Prepared]:
        """Install another version of an installed blueprint (`to`, else the newest in the
        registries) with the values it was installed with; the plan shows what changes. Trust
        does not carry over to other content: `trust` trusts the new version; otherwise the
        plan shows which files and capabilities changed since the trusted one.

        Raises:
            UsageError: it is not installed, or no such version is published.
        """
        import tempfile

        entry = self.blueprint_list().get(name)
        if entry is None:
            raise UsageError(f"blueprint {name} is not installed", hint="afctl blueprint list")
        from afctl.blueprints.lock import Lock

        Lock(self.root).pin(name, None)  # an upgrade moves the lock on
        with tempfile.TemporaryDirectory(prefix="afctl-values-") as scratch:
            values = Path(scratch) / "values.yaml"
            values.write_text(json.dumps(entry.get("values") or {}), "utf-8")
            return self._install_from_registry(
                f"{name}@{to or '*'}", sets=(), files=(str(values),), trust=trust,
                dry_run=dry_run, confirm=confirm, lock_timeout=lock_timeout,
            )  # fmt: skip

    def usage(
        self, by: Sequence[str] = ("blueprint",), since: str | None = None
    ) -> list[dict[str, Any]]:
        """Tokens and model cost of the runs of installed blueprints' agents (by their
        `afctl/blueprint` label), grouped by `blueprint`, `agent` and/or `model`; for a
        blueprint priced by usage, the amount due at its unit price (`run`, `1k_tokens` or
        `usd_of_model_cost`).

        Raises:
            UsageError: an unknown grouping, or an unreadable --since.
        """
        from afctl.analytics.logs import since_timestamp
        from afctl.blueprints.package import load
        from afctl.blueprints.store import BlueprintStore

        columns = {"blueprint": "json_extract(labels, '$.\"afctl/blueprint\"')",
                   "agent": "agent", "model": "model"}  # fmt: skip
        unknown = [b for b in by if b not in columns]
        if unknown or not by:
            raise UsageError(f"--by {','.join(by)}: use blueprint, agent and/or model")
        if "blueprint" not in by:
            by = ["blueprint", *by]
        store = BlueprintStore(self._workspace_dir())
        installed = store.installed()
        pricing = {}
        for name, entry in installed.items():
            folder = store.path_of(name, str(entry["version"]))
            if folder.is_dir():
                spec = load(folder).document.get("spec") or {}
                pricing[name] = spec.get("pricing") or {"model": "free"}
        where = ["kind = 'agent'", f"{columns['blueprint']} IS NOT NULL", "is_replay = 0"]
        values: list[Any] = []
        if since:
            where.append("started_at >= ?")
            values.append(since_timestamp(since))
        select = ", ".join(f"{columns[b]} AS {b}" for b in by)
        sql = (
            f"SELECT {select}, count(*), coalesce(sum(input_tokens), 0), "
            "coalesce(sum(output_tokens), 0), sum(cost_usd), sum(cost_usd IS NULL) "
            f"FROM runs WHERE {' AND '.join(where)} "
            f"GROUP BY {', '.join(by)} ORDER BY {', '.join(by)}"
        )
        rows = []
        with self.prompt_log() as log:
            log.flush()
            for row in log.conn.execute(sql, values):
                group = dict(zip(by, row[: len(by)], strict=True))
                runs, tokens_in, tokens_out, cost, unknown_cost = row[len(by) :]
                price = pricing.get(str(group["blueprint"]), {"model": "unknown"})
                due = None
                if price.get("model") == "usage":
                    unit, rate = str(price.get("unit", "run")), float(price.get("price", 0))
                    measure = {"run": runs, "1k_tokens": (tokens_in + tokens_out) / 1000,
                               "usd_of_model_cost": cost or 0.0}.get(unit)  # fmt: skip
                    due = None if measure is None else round(measure * rate, 6)
                currency = price.get("currency", "USD") if due is not None else None
                rows.append({**group, "runs": runs, "input_tokens": tokens_in,
                             "output_tokens": tokens_out, "cost_usd": cost,
                             "cost_unknown_runs": unknown_cost, "pricing": price,
                             "amount_due": due, "currency": currency})  # fmt: skip
        return rows

    def registry_add(self, name: str, location: str) -> None:
        """Name a registry (a folder, relative to the current one, or an http(s) URL)."""
        from afctl.blueprints.registry import Registries

        Registries(self._workspace_dir(), self.root).add(name, location, Path.cwd())

    def registries(self) -> dict[str, str]:
        from afctl.blueprints.registry import Registries

        return {r.name: r.location for r in Registries(self._workspace_dir(), self.root).all()}

    def blueprint_publish(self, archive: PathArg, registry: str) -> dict[str, Any]:
        """Add a checked archive to a folder registry (by name, or a folder path).

        Raises:
            UsageError: a refused archive, a URL registry, or a version already published
                with other content.
        """
        from afctl.blueprints.registry import Registries, Registry

        known = Registries(self._workspace_dir(), self.root)
        if Path(registry).is_dir() or "/" in registry:  # a folder given directly
            target = Registry(registry, str(Path(registry).resolve()))
        else:
            target = known.named(registry)
        return target.publish(Path(archive))

    def blueprint_search(self, text: str, category: str | None = None) -> list[dict[str, Any]]:
        from afctl.blueprints.registry import Registries

        return Registries(self._workspace_dir(), self.root).search(text, category)

    def blueprint_info(self, name: str) -> dict[str, Any]:
        """Every published version of a blueprint, with its metadata and pricing.

        Raises:
            UsageError: no registry has it.
        """
        from afctl.blueprints.registry import Registries

        for registry in Registries(self._workspace_dir(), self.root).all():
            item = (registry.index().get("blueprints") or {}).get(name)
            if item:
                return {"name": name, "registry": registry.name, **item}
        raise UsageError(f"no registry has a blueprint named {name}",
                         hint=f"afctl blueprint search {name}")  # fmt: skip

    def blueprint_uninstall(
        self,
        name: str,
        *,
        confirm: Confirm | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> ApplyOutcome:
        """Delete exactly the resources blueprint `name` installed, and forget it (its trust
        included).

        Raises:
            UsageError: it is not installed.
            ProtectedResources: one of its resources is protected.
        """
        import shutil

        from afctl.blueprints.install import source_set
        from afctl.blueprints.store import BlueprintStore
        from afctl.manifests.model import ManifestSet

        store = BlueprintStore(self._workspace_dir())
        entry = store.installed().get(name)
        if entry is None:
            raise UsageError(f"blueprint {name} is not installed", hint="afctl blueprint list")

        def make_plan(state: StateStore | None) -> Plan:
            from afctl.state.plan import build_plan

            applied, serial, workspace_id = self._snapshot(state)
            return build_plan(
                ManifestSet([]), applied, env=self.env, workspace_id=workspace_id,
                serial=serial, source_set=source_set(name), prune=True,
            )  # fmt: skip

        outcome = self._apply_locked(make_plan, confirm=confirm, lock_timeout=lock_timeout,
                                     command="afctl blueprint uninstall")  # fmt: skip
        if outcome.record is not None or not outcome.plan.has_changes:
            from afctl.blueprints.lock import Lock

            store.record(name, None)
            store.distrust(name)
            shutil.rmtree(store.folder / name, ignore_errors=True)
            Lock(self.root).pin(name, None)
        return outcome

    def blueprint_list(self) -> dict[str, dict[str, Any]]:
        """The installed blueprints: version, values, digest, resources, trust."""
        from afctl.blueprints.store import BlueprintStore

        store = BlueprintStore(self._workspace_dir())
        return {name: {**entry, "trusted": store.trusted(name)}
                for name, entry in sorted(store.installed().items())}  # fmt: skip

    def blueprint_trust(self, name: str) -> TrustReview:
        """Grant installed blueprint `name` its local capabilities (python, commands, env,
        plugins), for exactly the content installed now; returns what was trusted.

        Raises:
            UsageError: it is not installed, or its files changed since it was installed.
        """
        from afctl.blueprints.install import trust_installed
        from afctl.blueprints.store import BlueprintStore

        return trust_installed(BlueprintStore(self._workspace_dir()), name)

    def _run_environment(self, catalog: Catalog, variables: dict[str, Any]) -> RunEnvironment:
        from afctl.runtime.environment import RunEnvironment
        from afctl.safety.secrets import Secrets

        secrets = Secrets(variables={k: str(v) for k, v in variables.items()})
        return RunEnvironment(self.root, secrets, catalog, workspace=self._workspace_dir(),
                              grants=self._grants())  # fmt: skip

    def _grants(self) -> Grants:
        """What installed blueprints may do, read afresh (trust may have changed)."""
        from afctl.blueprints.trust import BlueprintGrants

        return BlueprintGrants(self.root, self._workspace_dir())

    def _replay_setup(
        self, run_id: str, revision: str, paths: PathArg | Sequence[PathArg] | None
    ) -> tuple[RunEnvironment, RunRecord, dict[str, Any], list[Message] | None]:
        """For replaying a run: its environment (recorded or current revision), record,
        payload, and the conversation it started from (for runs with a session)."""
        from afctl.providers.types import Message
        from afctl.runtime.environment import Catalog

        if revision not in ("recorded", "current"):
            raise UsageError(f"--revision {revision}: use recorded or current")
        with self.prompt_log() as log:
            record = log.run(run_id)
            if record.kind != "agent" or not record.agent:
                raise UsageError(f"run {record.id} is a {record.kind} run; replay runs agents")
            first = next((e for e in log.events(record.id) if e.type == "model_call"), None)
            payload = log.payload(record.id)
            if revision == "recorded":
                bundle = log.revision(record.revision_hash or "")
                catalog = Catalog.of_bundle(bundle)
        if revision == "current":
            catalog = self._catalog(_as_list(paths) if paths else None)
            if catalog.find("Agent", record.agent) is None:
                raise UsageError(f"agent/{record.agent} is not defined in the current revision")
        environment = self._run_environment(catalog, payload.get("vars") or {})
        history = None
        if record.session_id and first is not None:  # the session as it was then
            earlier = first.payload["request"]["messages"]
            start = 1 if earlier and earlier[0].get("role") == "system" else 0
            history = [Message.from_dict(m) for m in earlier[start:-1]]
        return environment, record, payload, history

    def replay(
        self,
        run_id: str,
        *,
        revision: str = "recorded",
        paths: PathArg | Sequence[PathArg] | None = None,
        live_tools: bool = False,
    ) -> ReplayReport:
        """Run a recorded agent run again offline, serving every model response (and, unless
        `live_tools`, every tool result) from the prompt log; report whether the engine
        reproduced it or where it first diverged. Nothing is written to the log.

        `revision`: `recorded` replays the agent revision the run used; `current` the one in
        `paths`, or applied in this environment.

        Raises:
            UsageError: no such run, or it cannot be replayed.
        """

        from afctl.promptlog.store import PromptLog
        from afctl.replay.offline import Recording, replay_factory, replay_run, tool_runner
        from afctl.runtime.agent import AgentRun, RunOptions

        with self.prompt_log() as log:
            if log.run(run_id).kind == "workflow":
                return self._replay_workflow(log, log.run(run_id), revision, paths)
        environment, record, payload, history = self._replay_setup(run_id, revision, paths)
        with self.prompt_log() as log:
            events = list(log.events(record.id))
        recording = Recording(events, environment.secrets.redact, tools=not live_tools)
        variables = payload.get("vars") or {}
        decisions = {
            (e.payload.get("name"), json.dumps(e.payload.get("arguments"), sort_keys=True)):
            bool(e.payload.get("approved"))
            for e in events if e.type == "approval"
        }  # fmt: skip

        async def approver(name: str, arguments: dict[str, Any]) -> bool:
            return decisions.get((name, json.dumps(arguments, sort_keys=True)), True)

        options = RunOptions(
            variables,
            env=record.env,
            provider_factory=replay_factory(recording),
            history=history,
            tool_runner=None if live_tools else tool_runner(recording),
            approver=approver,
        )
        from afctl.tools.mcp_tool import McpPool

        # offline, nothing is started: MCP tools are listed from memory or from the recording
        environment.mcp = McpPool(self._workspace_dir(), offline=not live_tools,
                                  recorded=recording.offered_tools())  # fmt: skip
        with PromptLog.in_memory() as memory:
            engine = AgentRun(record.agent or "", environment, memory, options)
            report = run_sync(_sharing_mcp(environment, replay_run(
                engine, payload.get("input") or "", recording, payload.get("output")
            )))  # fmt: skip
        report.run_id = record.id
        return report

    def _replay_workflow(
        self,
        log: PromptLog,
        record: RunRecord,
        revision: str,
        paths: PathArg | Sequence[PathArg] | None,
    ) -> ReplayReport:
        """A workflow run replayed offline: the engine again, each step served from its
        recorded child runs."""

        from afctl.promptlog.store import PromptLog
        from afctl.replay.workflow import RecordedSteps, replay_workflow
        from afctl.runtime.environment import Catalog
        from afctl.runtime.workflow import WorkflowOptions, WorkflowRun

        if revision not in ("recorded", "current"):
            raise UsageError(f"--revision {revision}: use recorded or current")
        if record.status in ("running", "interrupted"):
            raise UsageError(f"run {record.id} is {record.status}; replay a finished run")
        name = record.target.removeprefix("workflow/")
        if revision == "recorded":
            bundle = log.revision(record.revision_hash or "")
            catalog = Catalog.of_bundle(bundle)
        else:
            catalog = self._catalog(_as_list(paths) if paths else None)
            if catalog.find("Workflow", name) is None:
                raise UsageError(f"workflow/{name} is not defined in the current revision")
        payload = log.payload(record.id)
        saved = payload.get("vars") or {}
        variables = dict(saved.get("vars") or {})
        environment = self._run_environment(catalog, variables)
        finished = [e for e in log.events(record.id) if e.type == "step"]
        steps = RecordedSteps.load(log, finished, environment.secrets.redact)
        recorded = {e.payload["id"]: (str(e.status), e.payload.get("output")) for e in finished}

        async def no_wait(_: float) -> None:
            return None

        options = WorkflowOptions(variables, record.env, source=steps, sleep=no_wait)
        with PromptLog.in_memory() as memory:
            engine = WorkflowRun(name, environment, memory, options)
            report = run_sync(
                replay_workflow(engine, dict(saved.get("inputs") or {}), recorded,
                                payload.get("output"))
            )  # fmt: skip
        report.run_id = record.id
        return report

    def evaluate(
        self,
        paths: PathArg | Sequence[PathArg],
        *,
        progress: Callable[[int, int], None] | None = None,
        case_filter: str | None = None,
        limit: int | None = None,
        only_failed: str | None = None,
        baseline: str | None = None,
        cache: bool = True,
        explain_cache: bool = False,
    ) -> list[EvalResult]:
        """Run every EvalSuite in `paths` against its agent (from the same files, else the
        applied state); each case is a run in the prompt log with the eval's id, and the
        results are stored with the eval.

        `progress` is told (cases done, cases in all) as cases finish. `case_filter` (a regex
        on case ids), `limit` (the first N cases) and `only_failed`
        (`last` or an eval id: the cases that failed there) choose cases; `baseline` (`last` or
        an eval id) pairs the results by case and variant with an earlier eval's and lists
        regressions and fixes. Model answers come from the response cache in the prompt log
        when every input of the call is the same (`cache=False` calls the models anyway);
        `explain_cache` lists each miss with the inputs that differ from the nearest entry.

        Raises:
            ManifestError: the manifests are invalid.
            UsageError: a suite names no agent that is available, or uses what this version
                cannot run.
        """

        from afctl.eval.runner import cache_report, run_suite
        from afctl.promptlog.cache import ResponseCache
        from afctl.safety.regex import RegexError, compile_pattern

        suites, catalog = self._suites(paths)
        try:
            pattern = compile_pattern(case_filter) if case_filter else None
        except RegexError as exc:
            raise UsageError(f"--filter {case_filter}: {exc}") from None
        results = []
        with self.prompt_log() as log:
            baselines: dict[str, str] = {}
            for suite in suites:
                if only_failed is not None:
                    earlier = log.eval_case_results(log.eval_id(only_failed, suite.name))
                    failed = {case for (case, _), runs in earlier.items() if not all(runs)}
                    suite.cases = [c for c in suite.cases if c.id in failed]
                if pattern is not None:
                    suite.cases = [c for c in suite.cases if pattern.search(c.id)]
                if limit is not None:
                    suite.cases = suite.cases[:limit]
                if not suite.cases:
                    raise UsageError(f"eval suite {suite.name}: no case is left to run")
                if baseline is not None:
                    baselines[suite.name] = log.eval_id(baseline, suite.name)

            total = sum(len(s.cases) * len(s.variants) * s.repeat for s in suites)
            finished = 0

            def on_case(_: CaseResult) -> None:
                nonlocal finished
                finished += 1
                if progress is not None:
                    progress(finished, total)

            caches: list[ResponseCache | None] = []

            async def run_all() -> list[EvalResult]:
                async with self._eval_target(catalog, log) as target:
                    done = []
                    for suite in suites:
                        responses = ResponseCache(log, explain=explain_cache) if cache else None
                        caches.append(responses)

                        def make_run(
                            case: Any, eval_id: str, variant: Any, repeat: int,
                            suite: Any = suite, responses: ResponseCache | None = responses,
                        ) -> Any:  # fmt: skip
                            return target.case_run(
                                suite, case, variant, repeat, eval_id=eval_id, cache=responses
                            )

                        done.append(
                            await run_suite(suite, make_run, target.outcome, suite.grant, on_case,
                                            target.models(suite))
                        )  # fmt: skip
                    return done

            results = run_sync(run_all())
            for evaluated, responses in zip(results, caches, strict=True):
                if responses is not None:
                    evaluated.cache = cache_report(responses, evaluated, explain_cache)
                if evaluated.suite in baselines:
                    earlier = log.eval_case_results(baselines[evaluated.suite])
                    evaluated.compare(baselines[evaluated.suite], earlier)
                data = evaluated.to_dict()
                log.save_eval(data, data["cases"])
        return results

    def stress(
        self,
        paths: PathArg | Sequence[PathArg],
        ramp: list[int],
        duration_s: float,
        *,
        on_step: Callable[[StressStep], None] | None = None,
    ) -> list[StressReport]:
        """Load-test every suite's agent: at each concurrency of `ramp`, for `duration_s`,
        runs of its cases one after another (streamed, never from the cache), recorded in the
        prompt log under the stress test's id. `on_step` is told each step as it ends.

        Raises:
            ManifestError: the manifests are invalid.
            UsageError: no suite, or its agent is nowhere to be found.
        """

        from afctl.eval.stress import stress

        suites, catalog = self._suites(paths)
        with self.prompt_log() as log:

            async def run_all() -> list[StressReport]:
                async with self._eval_target(catalog, log) as target:
                    reports = []
                    for suite in suites:

                        def make_run(
                            case: Any, variant: Any, stress_id: str, on_text: Any,
                            suite: Any = suite,
                        ) -> Any:  # fmt: skip
                            return target.case_run(
                                suite, case, variant, 0, eval_id=stress_id, on_text=on_text
                            )

                        reports.append(await stress(suite, make_run, ramp, duration_s, on_step))
                    return reports

            return run_sync(run_all())

    def tune(
        self,
        paths: PathArg | Sequence[PathArg],
        params: list[str],
        *,
        strategy: str = "grid",
        samples: int | None = None,
        seed: int = 0,
        budget_usd: float | None = None,
        write: bool = False,
        on_candidate: Callable[[str], None] | None = None,
    ) -> list[TuneReport]:
        """Run each suite over the space of `params` (`name=v1,v2` or `name=@values.yaml`;
        `model`, `instructions` or any model parameter) by `strategy`, rank the candidates by
        pass rate, then cost, then latency, and with `write` apply the winner to the agent's
        manifest file. Every candidate's evaluation is an eval in the prompt log (the suite's
        own matrix is replaced by the candidates). `on_candidate` is told each candidate as it
        starts.

        Raises:
            ManifestError: the manifests are invalid.
            UsageError: a flag is wrong, or `write` has no agent file to change.
        """

        from afctl.eval.runner import run_suite
        from afctl.eval.tune import candidates_of, parse_params, tune, write_patch
        from afctl.promptlog.cache import ResponseCache
        from afctl.runtime.environment import Catalog

        space = candidates_of(parse_params(params, Path.cwd()))
        suites, catalog = self._suites(paths)
        for suite in suites:
            if suite.kind != "Agent":
                raise UsageError(
                    f"eval suite {suite.name} targets {suite.target}; afctl tune tunes agents"
                )
        if write:
            for suite in suites:
                if suite.agent_file is None:
                    raise UsageError(
                        f"--write: agent/{suite.agent} is not defined in the given files",
                        hint="pass the file that defines the agent along with the suite",
                    )
        reports = []
        with self.prompt_log() as log:

            async def run_all() -> list[TuneReport]:
                async with self._eval_target(catalog, log) as target:
                    responses = ResponseCache(log)
                    done = []
                    for suite in suites:

                        async def evaluate(
                            suite: Any, candidate: Any, cases: list[Any]
                        ) -> EvalResult:
                            if on_candidate is not None:
                                on_candidate(f"{candidate.id} on {len(cases)} cases")
                            resources = catalog
                            if candidate.instructions is not None:
                                agent = catalog.get("Agent", suite.agent)
                                changed = {**agent, "spec": {**(agent.get("spec") or {}),
                                           "instructions": candidate.instructions}}  # fmt: skip
                                resources = Catalog(
                                    {**catalog.documents, ("Agent", suite.agent): changed}
                                )
                            trial = dataclasses.replace(
                                suite, cases=cases, variants=[candidate.variant()]
                            )

                            def make_run(case: Any, eval_id: str, variant: Any, repeat: int) -> Any:
                                return target.case_run(
                                    trial, case, variant, repeat, eval_id=eval_id,
                                    cache=responses, catalog=resources,
                                )  # fmt: skip

                            result = await run_suite(trial, make_run, target.outcome, trial.grant,
                                                     services=target.models(trial))  # fmt: skip
                            data = result.to_dict()
                            log.save_eval(data, data["cases"])
                            return result

                        done.append(await tune(suite, space, evaluate, strategy=strategy,
                                               samples=samples, seed=seed,
                                               budget_usd=budget_usd))  # fmt: skip
                    return done

            reports = run_sync(run_all())
        if write:
            for report in reports:
                if report.winner is not None and report.agent_file is not None:
                    write_patch(
                        Path(report.agent_file), report.agent, report.winner.candidate.patch()
                    )
                    report.written = True
        return reports

    def _suites(self, paths: PathArg | Sequence[PathArg]) -> tuple[list[Suite], Catalog]:
        """The EvalSuites in `paths`, and the resources they run against (the same files over
        the applied state).

        Raises:
            ManifestError: the manifests are invalid.
            UsageError: there is no suite, or a suite's agent is nowhere to be found.
        """
        from afctl.eval.suite import load_suite
        from afctl.manifests.validate import validate_paths
        from afctl.runtime.environment import Catalog

        applied = self._catalog(None)
        result, manifests = validate_paths(_as_list(paths), None, external=applied.documents)
        if not result.valid:
            raise ManifestError(result.diagnostics, sources=result.sources)
        grants = self._grants()
        suites = []
        for m in manifests:
            if m.kind == "EvalSuite":  # a suite shipped in a blueprint runs under its grant
                grant = grants.for_path(Path(m.file))
                grant.references(m.data)
                suite = load_suite(m.data, m.file, grant.folder if grant.confined else self.root)
                suite.grant = grant
                suites.append(suite)
        if not suites:
            raise UsageError("no EvalSuite in the given files", hint="afctl eval evals/")
        catalog = Catalog({**applied.documents, **{(m.kind, m.name): m.data for m in manifests}})
        files = {m.name: m.file for m in manifests if m.kind == "Agent"}
        for suite in suites:
            suite.agent_file = files.get(suite.agent) if suite.kind == "Agent" else None
            if catalog.find(suite.kind, suite.agent) is None:
                raise UsageError(
                    f"eval suite {suite.name}: {suite.target} is neither in the files nor "
                    f"applied in environment {self.env}"
                )
        return suites, catalog

    @contextlib.asynccontextmanager
    async def _eval_target(self, catalog: Catalog, log: PromptLog) -> AsyncIterator[EvalTarget]:
        """The runs' shared plumbing for one event loop; closes the providers at the end."""
        from afctl.eval.target import EvalTarget
        from afctl.providers.pool import ProviderPool
        from afctl.tools.mcp_tool import McpPool

        pool = ProviderPool()
        servers = McpPool(self._workspace_dir())  # one start per server for every case
        try:
            yield EvalTarget(self.root, self.env, self._workspace_dir(), catalog, log, pool,
                             self._grants(), servers)  # fmt: skip
        finally:
            await servers.aclose()
            await pool.aclose()

    def diff_runs(self, a: str, b: str) -> RunDiff:
        """Two runs compared step by step (any two runs, not only a run and its replay)."""
        from afctl.replay.diff import Side, diff_runs

        with self.prompt_log() as log:
            sides = []
            for run_id in (a, b):
                record = log.run(run_id)
                payload = log.payload(record.id)
                sides.append(Side(record, payload.get("output"), list(log.events(record.id)),
                                  payload.get("input"), payload.get("vars") or {}))  # fmt: skip
        return diff_runs(sides[0], sides[1])

    def replay_live(
        self,
        run_id: str,
        *,
        model: str | None = None,
        params: dict[str, Any] | None = None,
        revision: str = "recorded",
        paths: PathArg | Sequence[PathArg] | None = None,
    ) -> tuple[RunResult, RunDiff]:
        """Run a recorded run's input again for real (optionally on another model or with
        other params), recorded as a new run with `replay_of` set and its spend tagged as a
        replay's; returns it with its step-aligned diff against the original.

        Raises:
            UsageError: no such run, or it cannot be replayed.
        """

        from afctl.runtime.agent import AgentRun, RunOptions

        environment, record, payload, history = self._replay_setup(run_id, revision, paths)
        variables = payload.get("vars") or {}
        with self.prompt_log() as log:
            options = RunOptions(
                variables,
                model=model,
                env=record.env,
                params=dict(params or {}),
                replay_of=record.id,
                history=history,
            )
            agent = record.agent or ""
            result = run_sync(
                AgentRun(agent, environment, log, options).run(payload.get("input") or "")
            )
        return result, self.diff_runs(record.id, result.run_id)

    def log_sizes(self) -> tuple[int, dict[str, tuple[int, int]]]:
        """The prompt log's size on disk, and bytes and rows per table."""
        with self.prompt_log() as log:
            return log.file_size(), log.table_sizes()

    def prune_logs(self, older_than: str, *, keep_failed: bool = False) -> tuple[int, str, int]:
        """Delete runs started more than `older_than` (30d, 12h, ...) ago, with their events
        and payloads: (runs deleted, the cut-off timestamp, the file's size)."""
        from afctl.analytics.logs import since_timestamp

        before = since_timestamp(older_than)
        with self.prompt_log() as log:
            return log.prune(before, keep_failed=keep_failed), before, log.file_size()

    def vacuum_logs(self) -> tuple[int, int]:
        """Compact the prompt log: its size (bytes) before and after."""
        with self.prompt_log() as log:
            before = log.file_size()
            log.vacuum()
            return before, log.file_size()

    def analytics(self) -> LogAnalytics:
        """DuckDB over the prompt log (read-only), with the documented views."""
        from afctl.analytics.logs import LogAnalytics
        from afctl.promptlog.store import LOG_FILE

        return LogAnalytics(self._workspace_dir() / LOG_FILE)

    def stats(
        self, by: Sequence[str] = (), *, since: str | None = None, include_replays: bool = False
    ) -> Table:
        """Runs, success rate, latency percentiles, tokens and cost, grouped by `by` (agent,
        model, day, status, env, target, label:KEY)."""
        with self.analytics() as analytics:
            return analytics.stats(list(by), since, include_replays)

    def query(self, sql: str) -> Table:
        """Read-only SQL over the prompt log's views (runs, events, model_calls, tool_calls,
        evals)."""
        with self.analytics() as analytics:
            return analytics.query(sql)

    def export(
        self,
        what: str,
        target: PathArg,
        fmt: str,
        *,
        since: str | None = None,
        content: bool = False,
    ) -> int:
        """Write a view of the prompt log to parquet, csv or jsonl (`content`: with inputs,
        outputs and payloads, redacted as logged); returns the rows written."""
        with self.analytics() as analytics:
            return analytics.export(what, Path(target), fmt, since, content)

    def approve(
        self,
        run_id: str,
        *,
        deny: bool = False,
        on_text: Callable[[str], None] | None = None,
        approver: Approver | None = None,
    ) -> RunResult:
        """Approve (or deny) the tool calls a paused run waits for, and let it go on, as the
        same run, with the agent revision it started with.

        Raises:
            UsageError: no such run, or it is not awaiting approval.
        """

        from afctl.runtime.agent import AgentRun, RunOptions
        from afctl.runtime.environment import Catalog, RunEnvironment
        from afctl.safety.secrets import Secrets

        with self.prompt_log() as log:
            record = log.run(run_id)
            if record.status != "awaiting_approval" or not record.agent:
                raise UsageError(
                    f"run {record.id} is {record.status}, not awaiting approval",
                    hint="afctl runs --status awaiting_approval lists the runs that wait",
                )
            bundle = log.revision(record.revision_hash or "")
            catalog = Catalog.of_bundle(bundle)
            variables = log.payload(record.id).get("vars") or {}
            secrets = Secrets(variables={k: str(v) for k, v in variables.items()})
            workspace = self._workspace_dir()
            environment = RunEnvironment(self.root, secrets, catalog, workspace=workspace,
                                         grants=self._grants())  # fmt: skip
            options = RunOptions(
                variables, None, None, on_text, record.env, record.parent_id, approver=approver
            )
            agent_run = AgentRun(record.agent, environment, log, options)
            return run_sync(agent_run.resume(record.id, approved=not deny))

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Clear a workspace lock left behind by a process that died."""
        with self._require_state() as store:
            return store.force_unlock(lock_id)


def validate(paths: PathArg | Sequence[PathArg], *, use_cache: bool = False) -> ValidationResult:
    """Validate manifests with a default Context (no cache unless asked)."""
    return Context().validate(paths, use_cache=use_cache)


def load(paths: PathArg | Sequence[PathArg]) -> ManifestSet:
    """Load and validate manifests with a default Context; raises ManifestError if invalid."""
    return Context().load(paths)


def run(target: str, user_input: str, **options: Any) -> RunResult:
    """Run an agent with a default Context (see `Context.run` for the options)."""
    return Context(env=options.pop("env", None)).run(target, user_input, **options)


async def _sharing_mcp(environment: RunEnvironment, work: Awaitable[T]) -> T:
    """`work`, with one pool of MCP servers for all its runs, stopped when it ends."""
    from afctl.tools.mcp_tool import McpPool

    if environment.mcp is None:
        environment.mcp = McpPool(environment.workspace_dir)
    try:
        return await work
    finally:
        await environment.mcp.aclose()

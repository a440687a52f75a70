"""The applied state of one environment: plans, applies, deletes, rollbacks and what they left.

`StateService` owns the workspace's `state.db` connection for the life of its context and the
catalog of applied resources (read again only when an apply moved the state's serial on).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.console import Console
from afctl.errors import UsageError
from afctl.manifests.service import ManifestService, Paths, as_list
from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.manifests.catalog import Catalog
    from afctl.manifests.discovery import Uploaded
    from afctl.state.plan import Plan
    from afctl.state.store import AppliedResource, ApplyRecord, LockInfo, Revision, StateStore

Confirm = Callable[["Plan"], bool]
"""Shown a plan with changes; returns whether to apply it."""
DEFAULT_LOCK_TIMEOUT_S = 10.0


def nothing_applied() -> UsageError:
    return UsageError(
        "nothing has been applied in this workspace yet",
        hint="apply manifests first: afctl apply -f .",
    )


@dataclass(frozen=True)
class ApplyOutcome:
    """What an apply (or delete, or rollback) did."""

    plan: Plan
    record: ApplyRecord | None
    """None when there was nothing to do or the user declined."""
    knowledge: tuple[Any, ...] = ()
    """The knowledge packs brought up to date with their sources after the apply
    (`afctl.knowledge.service.KnowledgeBuild` records)."""

    @property
    def applied(self) -> bool:
        return self.record is not None

    def to_dict(self) -> dict[str, Any]:
        """The plan and what applying it did (the API's answer to an apply)."""
        record = None if self.record is None else dict(vars(self.record))
        return {"applied": self.applied, "plan": self.plan.to_dict(), "apply": record}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApplyOutcome:
        from afctl.state.plan import Plan
        from afctl.state.store import ApplyRecord

        record = data.get("apply")
        return cls(Plan.from_dict(data["plan"]), None if record is None else ApplyRecord(**record))


@dataclass(frozen=True)
class ResourceDiff:
    """`afctl diff` of one resource: the plan's change and a unified YAML diff."""

    action: str
    ref: str
    text: str


@dataclass(frozen=True)
class Description:
    """`afctl describe`: a resource, its history and where it came from."""

    resource: AppliedResource
    revisions: list[Revision]
    last_apply: ApplyRecord | None

    def to_dict(self) -> dict[str, Any]:
        last = None if self.last_apply is None else dict(vars(self.last_apply))
        return {"resource": self.resource.to_dict(),
                "revisions": [r.to_dict() for r in self.revisions], "last_apply": last}  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Description:
        from afctl.state.store import AppliedResource, ApplyRecord, Revision

        last = data.get("last_apply")
        return cls(AppliedResource.from_dict(data["resource"]),
                   [Revision.from_dict(r) for r in data.get("revisions") or []],
                   None if last is None else ApplyRecord(**last))  # fmt: skip


AfterApply = Callable[[ApplyOutcome], ApplyOutcome]


class StateService:
    def __init__(
        self, workspace: Workspace, manifests: ManifestService, console: Console | None = None
    ) -> None:
        self.workspace = workspace
        self.manifests = manifests
        self.console = console or Console()
        self.after_apply: list[AfterApply] = []
        """Run on the outcome of every apply (the knowledge service refreshes its packs)."""
        self._store: StateStore | None = None
        self._catalog: tuple[int, Catalog] | None = None

    @property
    def env(self) -> str:
        return self.workspace.env

    # -- the store -------------------------------------------------------------------------

    def store(self, *, create: bool = False) -> StateStore | None:
        """The shared state store; None when there is no state yet and `create` is false."""
        from afctl.state.store import StateStore

        if self._store is None:
            if not create and not self.has_state():
                return None
            self._store = StateStore.open(self.workspace.dir, create=True,
                                          settings=self.workspace.storage)  # fmt: skip
        return self._store

    def require(self) -> StateStore:
        store = self.store()
        if store is None:
            raise nothing_applied()
        return store

    def has_state(self) -> bool:
        from afctl.state.store import STATE_FILE

        if self._store is not None or self.workspace.storage.state is not None:
            return True
        found = self.workspace.found
        return found is not None and (found / STATE_FILE).exists()

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def snapshot(
        self, store: StateStore | None
    ) -> tuple[dict[tuple[str, str], AppliedResource], int, str | None]:
        """The applied resources (documents read on demand), serial and workspace id."""
        if store is None:
            return {}, 0, None
        return (
            store.resources(self.env, documents=False),
            store.serial(self.env),
            store.workspace_id,
        )

    def serial(self) -> int:
        """The applied state's serial in this environment (0 with no state)."""
        store = self.store()
        return 0 if store is None else store.serial(self.env)

    def catalog(self, paths: Paths | None = None) -> Catalog:
        """The resources in `paths`, or (without) those applied in this environment."""
        from afctl.manifests.catalog import Catalog

        if paths:
            return Catalog.of((m.kind, m.name, m.data) for m in self.manifests.load(paths))
        store = self.store()
        if store is None:
            return Catalog({})
        serial = store.serial(self.env)
        if self._catalog is None or self._catalog[0] != serial:
            resources = store.resources(self.env)
            catalog = Catalog.of((r.kind, r.name, r.document) for r in resources.values())
            self._catalog = (serial, catalog)
        return self._catalog[1]

    # -- plans -----------------------------------------------------------------------------

    def _plan_with(
        self, store: StateStore | None, paths: list[str | Uploaded], prune: bool
    ) -> Plan:
        from afctl.state.plan import build_plan, source_set_of

        desired = self.manifests.load(paths)
        applied, serial, workspace_id = self.snapshot(store)
        return build_plan(desired, applied, env=self.env, workspace_id=workspace_id,
                          serial=serial, source_set=source_set_of(paths, self.workspace.root),
                          prune=prune)  # fmt: skip

    def plan(self, paths: Paths, *, prune: bool = False) -> Plan:
        """What applying `paths` would change; writes nothing.

        Raises:
            ManifestError: the manifests are invalid.
            ProtectedResources: the plan would delete protected resources.
        """
        return self._plan_with(self.store(), as_list(paths), prune)

    def apply_locked(
        self,
        make_plan: Callable[[StateStore], Plan],
        *,
        confirm: Confirm | None,
        lock_timeout: float,
        command: str,
    ) -> ApplyOutcome:
        """Make a plan under the workspace lock and apply it in one transaction (unless it
        has no changes or `confirm` declines it)."""
        from afctl.state.apply import apply_plan

        store = self.store(create=True)
        assert store is not None
        lock = store.acquire_lock(command, lock_timeout)
        try:
            plan = make_plan(store)
            if not plan.has_changes or (confirm is not None and not confirm(plan)):
                return ApplyOutcome(plan, None)
            return ApplyOutcome(plan, apply_plan(store, plan, lock, command))
        finally:
            store.release_lock(lock)

    def asking(self, action: str, *, decided: bool = False) -> Confirm:
        """The console's confirmation of a plan before `action` (Apply, Delete, ...) carries it
        out; `decided`: shown, and carried out whatever the answer (a saved plan)."""
        console = self.console

        def confirm(plan: Plan) -> bool:
            return console.confirm(plan, action, decided=decided) or decided

        return confirm

    def refreshed(self, outcome: ApplyOutcome) -> ApplyOutcome:
        """`outcome`, after what follows an apply (knowledge packs brought up to date)."""
        for hook in self.after_apply:
            outcome = hook(outcome)
        return outcome

    def apply(
        self,
        paths: Paths,
        *,
        prune: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        command: str = "afctl apply",
    ) -> ApplyOutcome:
        """Plan `paths` under the workspace lock and apply the plan in one transaction.

        The console's `confirm` sees the plan first and may decline it.

        Raises:
            ManifestError: the manifests are invalid.
            ProtectedResources: the plan would delete protected resources.
            StateConflict: the workspace stayed locked for `lock_timeout` seconds.
        """
        files = as_list(paths)
        outcome = self.apply_locked(lambda store: self._plan_with(store, files, prune),
                                    confirm=self.asking("Apply"), lock_timeout=lock_timeout,
                                    command=command)  # fmt: skip
        return self.refreshed(outcome)

    @staticmethod
    def read_plan(path: str | os.PathLike[str]) -> Plan:
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
    def save_plan(plan: Plan, path: str | os.PathLike[str]) -> None:
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
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        command: str = "afctl apply PLAN",
    ) -> ApplyOutcome:
        """Apply exactly `plan`, or refuse it when the state moved on since it was made. A
        saved plan is its own approval (as in terraform): the console is shown it, not asked.

        Raises:
            StateConflict: the plan is stale, or for another workspace or environment.
        """
        from afctl.errors import StateConflict
        from afctl.state.apply import check_plan_applies

        if plan.env != self.env:
            raise StateConflict(f"the plan is for environment {plan.env}, not {self.env}",
                                hint=f"apply it with --env {plan.env}")  # fmt: skip

        def checked(store: StateStore) -> Plan:
            check_plan_applies(store, plan)
            return plan

        confirm = self.asking("Apply", decided=True)
        outcome = self.apply_locked(checked, confirm=confirm, lock_timeout=lock_timeout,
                                    command=command)  # fmt: skip
        return self.refreshed(outcome)

    def diff(self, paths: Paths, *, prune: bool = False) -> list[ResourceDiff]:
        """Unified YAML diffs of applied versus desired, one per resource that would change."""
        from afctl.state.diff import unified_yaml_diff

        diffs = []
        for change in self.plan(paths, prune=prune).changes:
            before = f"applied/{change.ref}" if change.action != "create" else "/dev/null"
            after = f"desired/{change.ref}" if change.action != "delete" else "/dev/null"
            text = unified_yaml_diff(change.before, change.document, before, after)
            diffs.append(ResourceDiff(change.action, change.ref, text))
        return diffs

    # -- reading the state -----------------------------------------------------------------

    def get(
        self, kind: str | None = None, name: str | None = None, selector: str | None = None
    ) -> list[AppliedResource]:
        """Applied resources of this environment, optionally of one kind, name or label set."""
        from afctl.manifests.kinds import KINDS, find_kind
        from afctl.state.selectors import parse_selector

        wanted_kind = find_kind(kind) if kind and kind.lower() != "all" else None
        matches = parse_selector(selector) if selector else None
        store = self.store()
        if store is None:
            return []
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
        """A resource with its revisions and the apply that made it what it is."""
        (resource,) = self.get(kind, name)
        store = self.require()
        revisions = store.revisions(self.env, resource.kind, name)
        return Description(resource, revisions, store.apply_record(resource.apply_id))

    def history(self, kind: str, name: str) -> list[Revision]:
        """Every revision of a resource, deletions included, oldest first."""
        from afctl.manifests.kinds import find_kind

        kind = find_kind(kind)
        revisions = self.require().revisions(self.env, kind, name)
        if not revisions:
            raise UsageError(f"{kind.lower()}/{name} has no history in environment {self.env}")
        return revisions

    # -- deletes and rollbacks -------------------------------------------------------------

    def delete(
        self,
        refs: Sequence[tuple[str, str]] = (),
        paths: Paths = (),
        *,
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
        files = as_list(paths)
        if files:
            targets += [(m.kind, m.name) for m in self.manifests.load(files)]
        if not targets:
            raise UsageError("nothing to delete", hint="name KIND/NAME or pass -f PATH")
        if not self.has_state():
            raise nothing_applied()

        def make(store: StateStore) -> Plan:
            applied, serial, workspace_id = self.snapshot(store)
            return build_delete_plan(targets, applied, env=self.env,
                                     workspace_id=workspace_id, serial=serial)  # fmt: skip

        return self.apply_locked(make, confirm=self.asking("Delete"), lock_timeout=lock_timeout,
                                 command=command)  # fmt: skip

    def rollback(
        self,
        kind: str,
        name: str,
        to: int,
        *,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
        command: str = "afctl rollback",
    ) -> ApplyOutcome:
        """Apply revision `to` of a resource again, as a new revision.

        Raises:
            UsageError: no such revision, or it was a deletion.
        """
        from afctl.manifests.model import Manifest
        from afctl.state.plan import build_rollback_plan

        old = {r.revision: r for r in self.history(kind, name)}.get(to)
        if old is None or old.document is None:
            what = "is a deletion" if old is not None else "does not exist"
            hint = f"afctl history {kind.lower()}/{name} lists the revisions"
            raise UsageError(f"revision {to} of {kind.lower()}/{name} {what}", hint=hint)
        document = old.document
        manifest = Manifest(str(document["kind"]), name, document, old.source_file or "", 0)

        def make(store: StateStore) -> Plan:
            applied, serial, workspace_id = self.snapshot(store)
            return build_rollback_plan(manifest, to, applied, env=self.env,
                                       workspace_id=workspace_id, serial=serial)  # fmt: skip

        return self.apply_locked(make, confirm=self.asking("Roll back"),
                                 lock_timeout=lock_timeout, command=command)  # fmt: skip

    def force_unlock(self, lock_id: str) -> LockInfo:
        """Clear a workspace lock left behind by a process that died."""
        return self.require().force_unlock(lock_id)

"""Plans: what applying the desired manifests would change in an environment's state.

A `Plan` is a frozen value computed from desired manifests and applied state; nothing here
writes. `afctl.state.apply` evaluates it. A saved plan (JSON, `PLAN_FORMAT`) carries the
rendered desired documents and the state serial it was made against, so applying it later
writes exactly what was shown, or is refused when the state has moved on.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afctl._version import __version__
from afctl.errors import UsageError, UserError
from afctl.ids import new_ulid, utc_now
from afctl.manifests.discovery import Uploaded
from afctl.manifests.kinds import KINDS
from afctl.manifests.model import Manifest
from afctl.state.diff import FieldChange, content_hash, field_changes
from afctl.state.store import AppliedResource

PLAN_FORMAT = 1
ACTIONS = ("create", "update", "delete")
_KIND_ORDER = {kind: index for index, kind in enumerate(KINDS)}


def is_protected(document: Mapping[str, Any] | None) -> bool:
    """`metadata.lifecycle.protect` of a manifest."""
    metadata = (document or {}).get("metadata")
    lifecycle = metadata.get("lifecycle") if isinstance(metadata, dict) else None
    return bool(isinstance(lifecycle, dict) and lifecycle.get("protect"))


def source_set_of(paths: Sequence[str | Uploaded], root: Path) -> str:
    """The identity of "these files", recorded on what they apply and used by `--prune`.

    The `-f` paths relative to the repository root, sorted: `afctl apply -f .` at the root and
    `afctl apply -f ..` from `agents/` are the same source set. Uploaded manifests name the
    paths their sender was given, relative to the sender's root: a remote apply of `.` and a
    local one are the same source set.
    """
    names: set[str] = set()
    for path in paths:
        if isinstance(path, Uploaded):
            names.update(path.given)
            continue
        if path == "-":
            names.add("-")
            continue
        absolute = Path(path).absolute()
        relative = os.path.relpath(absolute, root)
        names.add(str(absolute) if relative.startswith("..") else Path(relative).as_posix())
    return ",".join(sorted(names))


@dataclass(frozen=True)
class Change:
    """One resource the plan creates, updates or deletes."""

    action: str
    kind: str
    name: str
    document: dict[str, Any] | None
    """The desired manifest (None for a delete)."""
    before_hash: str | None
    after_hash: str | None
    before_revision: int | None
    fields: tuple[FieldChange, ...] = ()
    source_file: str | None = None
    source_line: int | None = None
    owner: str | None = None
    """The source set that owns the resource after the apply."""
    previous_owner: str | None = None
    reason: str | None = None
    """Why, when it is not the plain difference (a prune, a rollback, a delete)."""
    before: dict[str, Any] | None = field(default=None, compare=False, repr=False)
    """The applied document, for rendering; not saved in plan files."""

    @property
    def ref(self) -> str:
        return f"{self.kind.lower()}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "before_hash": self.before_hash,
            "after_hash": self.after_hash,
            "before_revision": self.before_revision,
            "fields": [f.to_dict() for f in self.fields],
            "source_file": self.source_file,
            "source_line": self.source_line,
            "owner": self.owner,
            "previous_owner": self.previous_owner,
            "reason": self.reason,
            "document": self.document,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            action=data["action"],
            kind=data["kind"],
            name=data["name"],
            document=data["document"],
            before_hash=data["before_hash"],
            after_hash=data["after_hash"],
            before_revision=data["before_revision"],
            fields=tuple(FieldChange.from_dict(f) for f in data["fields"]),
            source_file=data["source_file"],
            source_line=data["source_line"],
            owner=data["owner"],
            previous_owner=data["previous_owner"],
            reason=data["reason"],
        )


@dataclass(frozen=True)
class Plan:
    """What an apply would do to one environment."""

    plan_id: str
    created_at: str
    env: str
    workspace_id: str | None
    """The state the plan was made against (None when there was no state yet)."""
    state_serial: int
    source_set: str | None
    prune: bool
    changes: tuple[Change, ...]
    unchanged: int
    afctl_version: str = __version__
    notes: tuple[str, ...] = ()
    """What the plan's maker wants shown with it (a blueprint's capabilities); not saved."""

    @property
    def has_changes(self) -> bool:
        return bool(self.changes)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def summary(self) -> str:
        """`Plan: N to create, N to update, N to delete.`"""
        return (
            f"Plan: {self.count('create')} to create, {self.count('update')} to update, "
            f"{self.count('delete')} to delete."
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": PLAN_FORMAT,
            "afctl_version": self.afctl_version,
            "plan_id": self.plan_id,
            "created_at": self.created_at,
            "env": self.env,
            "workspace_id": self.workspace_id,
            "state_serial": self.state_serial,
            "source_set": self.source_set,
            "prune": self.prune,
            "summary": {
                "create": self.count("create"),
                "update": self.count("update"),
                "delete": self.count("delete"),
                "unchanged": self.unchanged,
            },
            "changes": [c.to_dict() for c in self.changes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Plan:
        """Read a saved plan; raises UsageError when it is not one afctl can apply."""
        if not isinstance(data, Mapping) or "format_version" not in data:
            raise UsageError(
                "this is not an afctl plan file", hint="make one with afctl plan --out"
            )
        if data["format_version"] != PLAN_FORMAT:
            raise UsageError(
                f"plan format {data['format_version']} is not supported (this afctl reads "
                f"{PLAN_FORMAT})",
                hint="make the plan again with this version of afctl",
            )
        try:
            changes = tuple(Change.from_dict(c) for c in data["changes"])
            for change in changes:
                if change.action not in ACTIONS:
                    raise ValueError(f"unknown action {change.action!r}")
            return cls(
                plan_id=str(data["plan_id"]),
                created_at=str(data["created_at"]),
                env=str(data["env"]),
                workspace_id=data["workspace_id"],
                state_serial=int(data["state_serial"]),
                source_set=data["source_set"],
                prune=bool(data["prune"]),
                changes=changes,
                unchanged=int(data["summary"]["unchanged"]),
                afctl_version=str(data["afctl_version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(
                f"the plan file is damaged ({type(exc).__name__}: {exc})",
                hint="make the plan again with afctl plan --out",
            ) from None


class ProtectedResources(UserError):
    """A plan would delete resources marked `lifecycle: {protect: true}`."""

    def __init__(self, blocked: Sequence[AppliedResource]) -> None:
        names = ", ".join(r.ref for r in blocked)
        super().__init__(
            f"the plan would delete protected resources: {names}",
            hint="lift the protection first: apply the manifest with lifecycle.protect: false "
            "(or without lifecycle), then delete it",
        )
        self.blocked = list(blocked)


def _sort_key(change: Change) -> tuple[int, str]:
    return (_KIND_ORDER.get(change.kind, 99), change.name)


def _create_or_update(
    manifest: Manifest,
    applied: AppliedResource | None,
    source_set: str | None,
    reason: str | None = None,
) -> Change | None:
    document = manifest.data
    digest = content_hash(document)
    common = {
        "kind": manifest.kind,
        "name": manifest.name,
        "document": document,
        "after_hash": digest,
        "source_file": manifest.file,
        "source_line": manifest.line,
        "owner": source_set,
        "reason": reason,
    }
    if applied is None:
        return Change("create", before_hash=None, before_revision=None, **common)  # type: ignore[arg-type]
    if applied.hash == digest and (source_set is None or applied.source_set == source_set):
        return None
    return Change(
        "update",
        before_hash=applied.hash,
        before_revision=applied.revision,
        fields=tuple(field_changes(applied.document, document)),
        previous_owner=applied.source_set if applied.source_set != source_set else None,
        before=applied.document,
        **common,  # type: ignore[arg-type]
    )


def _delete(applied: AppliedResource, reason: str) -> Change:
    return Change(
        "delete",
        applied.kind,
        applied.name,
        document=None,
        before_hash=applied.hash,
        after_hash=None,
        before_revision=applied.revision,
        source_file=applied.source_file,
        owner=applied.source_set,
        reason=reason,
        before=applied.document,
    )


def _new_plan(
    changes: Iterable[Change],
    *,
    env: str,
    workspace_id: str | None,
    serial: int,
    source_set: str | None,
    prune: bool,
    unchanged: int,
    applied: Mapping[tuple[str, str], AppliedResource],
) -> Plan:
    ordered = tuple(sorted(changes, key=_sort_key))
    blocked = [applied[(c.kind, c.name)] for c in ordered if c.action == "delete"]
    blocked = [r for r in blocked if r.protect]
    if blocked:
        raise ProtectedResources(blocked)
    return Plan(
        new_ulid(), utc_now(), env, workspace_id, serial, source_set, prune, ordered, unchanged
    )


def build_plan(
    desired: Iterable[Manifest],
    applied: Mapping[tuple[str, str], AppliedResource],
    *,
    env: str,
    workspace_id: str | None,
    serial: int,
    source_set: str,
    prune: bool = False,
) -> Plan:
    """Compare desired manifests with the applied state of `env`.

    Deletes are planned only with `prune`, and only for resources that this same source set
    applied earlier: a resource applied from other files is never deleted by guessing.

    Raises:
        ProtectedResources: the plan would delete protected resources.
    """
    changes = []
    unchanged = 0
    wanted = set()
    for manifest in desired:
        wanted.add((manifest.kind, manifest.name))
        change = _create_or_update(
            manifest, applied.get((manifest.kind, manifest.name)), source_set
        )
        if change is None:
            unchanged += 1
        else:
            changes.append(change)
    if prune:
        for key, resource in applied.items():
            if key not in wanted and resource.source_set == source_set:
                changes.append(_delete(resource, f"no longer in {source_set}"))
    return _new_plan(
        changes,
        env=env,
        workspace_id=workspace_id,
        serial=serial,
        source_set=source_set,
        prune=prune,
        unchanged=unchanged,
        applied=applied,
    )


def build_delete_plan(
    targets: Iterable[tuple[str, str]],
    applied: Mapping[tuple[str, str], AppliedResource],
    *,
    env: str,
    workspace_id: str | None,
    serial: int,
) -> Plan:
    """A plan deleting the named resources (`afctl delete`).

    Raises:
        UsageError: a named resource is not applied in this environment.
        ProtectedResources: one of them is protected.
    """
    changes = []
    for kind, name in targets:
        resource = applied.get((kind, name))
        if resource is None:
            raise UsageError(
                f"{kind.lower()}/{name} is not applied in environment {env}",
                hint=f"afctl get {kind.lower()} lists what is",
            )
        changes.append(_delete(resource, "deleted by request"))
    return _new_plan(
        changes,
        env=env,
        workspace_id=workspace_id,
        serial=serial,
        source_set=None,
        prune=False,
        unchanged=0,
        applied=applied,
    )


def build_rollback_plan(
    manifest: Manifest,
    revision: int,
    applied: Mapping[tuple[str, str], AppliedResource],
    *,
    env: str,
    workspace_id: str | None,
    serial: int,
) -> Plan:
    """A plan that applies an earlier revision's document again, as a new revision."""
    current = applied.get((manifest.kind, manifest.name))
    owner = current.source_set if current is not None else None
    change = _create_or_update(manifest, current, owner, reason=f"rollback to revision {revision}")
    return _new_plan(
        [change] if change is not None else [],
        env=env,
        workspace_id=workspace_id,
        serial=serial,
        source_set=owner,
        prune=False,
        unchanged=0 if change is not None else 1,
        applied=applied,
    )

"""Trust in installed blueprints, bound to their content digest, and the grants their resources
run under (`afctl.safety.capabilities` checks them at every execution channel).

A blueprint is trusted with exactly the content it had when you trusted it: another version,
or the same version with other files, is not trusted until you say so again, and the plan of
an upgrade shows which files and capabilities changed. Before a trusted blueprint's code runs,
its files on disk are checked against the hashes it was installed with.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afctl.blueprints.store import BlueprintStore
from afctl.safety.capabilities import Capabilities, Grant, Grants

IGNORED_PARTS = frozenset({"__pycache__"})
MARKERS = frozenset({".digest", ".manifest.json"})


def changed_files(folder: Path, manifest: dict[str, Any]) -> list[str]:
    """Files of a placed blueprint that differ from its MANIFEST.json: changed or missing, and
    python files that it does not list (an import could reach them)."""
    changed = []
    listed = manifest.get("files") or {}
    for name, entry in sorted(listed.items()):
        try:
            data = (folder / name).read_bytes()
        except OSError:
            changed.append(name)
            continue
        if hashlib.sha256(data).hexdigest() != (entry or {}).get("sha256"):
            changed.append(name)
    if folder.is_dir():
        for path in sorted(folder.rglob("*.py")):
            relative = path.relative_to(folder)
            if relative.as_posix() not in listed and not IGNORED_PARTS & set(relative.parts):
                changed.append(relative.as_posix())
    return changed


@dataclass(frozen=True)
class TrustReview:
    """What an install shows of a blueprint's capabilities and trust."""

    name: str
    version: str
    capabilities: Capabilities
    trusted: bool
    """Whether it will run trusted (given --trust, or trusted with this very content)."""
    previous: str | None = None
    """The version trusted before, when its content differed."""
    changed: list[str] = field(default_factory=list)
    """Files that differ from the version trusted before."""
    capability_changes: list[str] = field(default_factory=list)

    @property
    def needs_trust(self) -> bool:
        return not self.trusted and any(local for _, _, local in self.capabilities.describe())

    def lines(self) -> list[str]:
        """The review as the plan shows it."""
        described = self.capabilities.describe()
        if not described:
            return [
                f"Capabilities of {self.name} {self.version}: none (it only talks to its models)."
            ]
        lines = [f"Capabilities of {self.name} {self.version} (from its blueprint.yaml):"]
        for kind, text, local in described:
            state = "granted" if self.trusted or not local else "needs trust"
            lines.append(f"  {kind:<9}{text}  [{state}]")
        if self.previous is not None:
            lines.append(f"Changed since you trusted {self.name} {self.previous}:")
            lines += [f"  file {name}" for name in self.changed[:20]]
            if len(self.changed) > 20:
                lines.append(f"  ... and {len(self.changed) - 20} more files")
            lines += [f"  {change}" for change in self.capability_changes]
        if self.needs_trust:
            lines.append(
                f"Untrusted: its local capabilities stay off until you read it and run "
                f"afctl blueprint trust {self.name} (or install with --trust)."
            )
        return lines


def review(
    store: BlueprintStore,
    name: str,
    version: str,
    capabilities: Capabilities,
    digest: str,
    manifest: dict[str, Any],
    trust: bool,
) -> TrustReview:
    """The review of installing NAME VERSION with this content, given what was trusted."""
    record = store.trust_record(name)
    trusted = trust or store.trusted(name, digest)
    if record is None or record.get("digest") == digest:
        return TrustReview(name, version, capabilities, trusted)
    before = record.get("files") or {}
    now = {n: (e or {}).get("sha256") for n, e in (manifest.get("files") or {}).items()}
    changed = sorted(n for n in set(before) | set(now) if before.get(n) != now.get(n))
    changes = capabilities.changes(Capabilities.parse(record.get("capabilities")))
    return TrustReview(name, version, capabilities, trusted, str(record.get("version")),
                       changed, changes)  # fmt: skip


class BlueprintGrants(Grants):
    """The grants of a workspace's resources: what each installed blueprint declared, less its
    local capabilities unless it is trusted with the content on disk."""

    def __init__(self, root: Path, workspace: Path) -> None:
        super().__init__(root)
        self.store = BlueprintStore(workspace)
        self._grants: dict[tuple[str, str], Grant] = {}

    def for_path(self, path: Path) -> Grant:
        try:
            relative = path.resolve().relative_to(self.store.folder.resolve())
        except ValueError:
            return Grant(self.root)
        if len(relative.parts) < 3:
            return Grant(self.root)
        return self.of_blueprint(relative.parts[0], relative.parts[1])

    def of_blueprint(self, name: str, version: str) -> Grant:
        key = (name, version)
        if key not in self._grants:
            self._grants[key] = self._grant(name, version)
        return self._grants[key]

    def _grant(self, name: str, version: str) -> Grant:
        from afctl.errors import UsageError

        origin = f"{name} {version}"
        try:
            folder = self.store.path_of(name, version)
        except UsageError:
            return Grant(self.root / ".afctl" / "none", origin, withheld="its name is not valid")
        entry = self.store.installed().get(name) or {}
        if str(entry.get("version")) != version or not folder.is_dir():
            return Grant(folder, origin, withheld=f"version {version} is not installed")
        declared = Capabilities.parse(entry.get("capabilities"))
        hint = f"read {folder}, then: afctl blueprint trust {name}"
        untrusted = Grant(folder, origin, declared.without_local(), declared,
                          "it is not trusted", hint)  # fmt: skip
        record = self.store.trust_record(name)
        if not self.store.trusted(name):
            if record is not None:
                withheld = f"its content changed since you trusted version {record.get('version')}"
                return Grant(folder, origin, declared.without_local(), declared, withheld, hint)
            return untrusted
        manifest = self.store.manifest_of(name, version)
        changed = changed_files(folder, manifest) if manifest is not None else ["MANIFEST.json"]
        if changed:
            withheld = "its files changed since it was trusted (" + ", ".join(changed[:3]) + ")"
            return Grant(folder, origin, declared.without_local(), declared, withheld,
                         f"reinstall it, or check {folder} and trust it again")  # fmt: skip
        return Grant(folder, origin, declared, declared)

"""Blueprints for a context: authoring (create, lint, render, pack), installing from folders,
archives and registries (pinned in `afctl.lock`), trust, upgrades, removal, and what their
agents' runs cost."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.errors import ManifestError, UsageError
from afctl.promptlog.service import USAGE_GROUPS, LogService, UsageTotals
from afctl.state.service import DEFAULT_LOCK_TIMEOUT_S, ApplyOutcome, StateService
from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.blueprints.install import Prepared
    from afctl.blueprints.package import Blueprint, Rendered
    from afctl.blueprints.trust import TrustReview
    from afctl.diagnostics import Diagnostic
    from afctl.manifests.service import PathArg
    from afctl.state.plan import Plan
    from afctl.state.store import StateStore


def _amount_due(price: dict[str, Any], totals: UsageTotals) -> float | None:
    """What a blueprint priced by usage costs for these runs at its unit price."""
    if price.get("model") != "usage":
        return None
    unit, rate = str(price.get("unit", "run")), float(price.get("price", 0))
    measure = {"run": totals.runs,
               "1k_tokens": (totals.input_tokens + totals.output_tokens) / 1000,
               "usd_of_model_cost": totals.cost_usd or 0.0}.get(unit)  # fmt: skip
    return None if measure is None else round(measure * rate, 6)


class BlueprintService:
    def __init__(self, workspace: Workspace, state: StateService, logs: LogService) -> None:
        self.workspace = workspace
        self.state = state
        self.logs = logs

    def create(self, name: str, parent: PathArg = ".") -> Path:
        """A new blueprint folder `parent/name` to start from (lints clean, evals pass).

        Raises:
            UsageError: a bad name, or the folder exists.
        """
        from afctl.blueprints.create import create

        return create(name, Path(parent))

    def lint(self, folder: PathArg) -> tuple[Blueprint, list[Diagnostic]]:
        """A blueprint folder and its problems (none: it is ready to pack).

        Raises:
            UsageError: there is no blueprint there.
            ManifestError: its blueprint.yaml is invalid.
        """
        from afctl.blueprints.package import lint, load

        blueprint = load(Path(folder))
        return blueprint, lint(blueprint)

    def render(
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

    def pack(self, folder: PathArg, output: PathArg | None = None) -> tuple[Path, dict[str, Any]]:
        """Pack a blueprint that lints clean into a reproducible `.afbp` archive (by default
        `NAME-VERSION.afbp` in the current folder); returns its path and MANIFEST.json.

        Raises:
            ManifestError: the blueprint has problems (afctl blueprint lint lists them).
            UsageError: the archive cannot be written.
        """
        from afctl.blueprints.archive import pack

        blueprint, problems = self.lint(folder)
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

    def install(
        self,
        source: PathArg,
        *,
        sets: Sequence[str] = (),
        files: Sequence[str] = (),
        trust: bool = False,
        dry_run: bool = False,
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
        return self._install(source, sets=sets, files=files, trust=trust, dry_run=dry_run,
                             lock_timeout=lock_timeout, action="Install")  # fmt: skip

    def install_from_registry(
        self,
        reference: str,
        *,
        sets: Sequence[str] = (),
        dry_run: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> tuple[ApplyOutcome, Prepared]:
        """`install` of NAME[@RANGE] from the workspace's registries only (never a path: the
        server installs this way), untrusted.

        Raises:
            UsageError: nothing matches, or a digest differs from the lock or the index.
        """
        return self._install_from_registry(reference, sets=sets, files=(), trust=False,
                                           dry_run=dry_run, lock_timeout=lock_timeout,
                                           action="Install")  # fmt: skip

    def _install(
        self,
        source: PathArg,
        *,
        sets: Sequence[str],
        files: Sequence[str],
        trust: bool,
        dry_run: bool,
        lock_timeout: float,
        action: str,
    ) -> tuple[ApplyOutcome, Prepared]:
        """`install`, confirming the plan with the console as `action` (Install, Upgrade)."""
        from afctl.blueprints.install import (
            discard,
            place,
            prepare,
            trust_placed,
            validate,
        )
        from afctl.blueprints.store import BlueprintStore
        from afctl.blueprints.trust import review

        store = BlueprintStore(self.workspace.dir)
        if not Path(source).exists():
            if "/" in str(source) or str(source).endswith(".afbp"):
                raise UsageError(
                    f"{source}: no such file or folder",
                    hint="give a blueprint folder, an .afbp archive, or NAME[@RANGE] from a "
                    "registry",
                )
            return self._install_from_registry(str(source), sets=sets, files=files, trust=trust,
                                               dry_run=dry_run, lock_timeout=lock_timeout,
                                               action=action)  # fmt: skip
        placed = place(Path(source), store)
        folder, digest, created = placed.folder, placed.digest, placed.created
        try:
            prepared = prepare(placed, self.workspace.root, list(sets), list(files))
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

        def make_plan(state: StateStore | None) -> Plan:
            return self._install_plan(state, prepared)

        if dry_run:
            try:
                return ApplyOutcome(make_plan(self.state.store()), None), prepared
            finally:
                if created:  # a dry run leaves the store as it was
                    discard(folder)
        try:
            outcome = self.state.apply_locked(make_plan, confirm=self.state.asking(action),
                                              lock_timeout=lock_timeout,
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
                "digest": digest, "content_digest": placed.content_digest,
                "env": self.workspace.env,
                "capabilities": blueprint.capabilities.to_dict(),
                "resources": sorted(f"{m.kind.lower()}/{m.name}" for m in prepared.manifests),
            })  # fmt: skip
            if trust:
                trust_placed(store, blueprint.name, blueprint.version, placed.manifest,
                             blueprint.capabilities)  # fmt: skip
            for other in (store.folder / prepared.blueprint.name).iterdir():
                if other.is_dir() and other.name != prepared.blueprint.version:
                    discard(other)  # no resource points at another version any more
        return self.state.refreshed(outcome), prepared

    def _install_plan(self, state: StateStore | None, prepared: Prepared) -> Plan:
        """The plan of installing `prepared`: its resources as the source set of the blueprint
        (what it no longer renders is pruned), refused when it would take over a resource
        another source applied; the review of its capabilities goes with it as notes."""
        from afctl.blueprints.install import source_set
        from afctl.manifests.model import ManifestSet
        from afctl.state.plan import build_plan

        owner = source_set(prepared.blueprint.name)
        applied, serial, workspace_id = self.state.snapshot(state)
        plan = build_plan(ManifestSet(list(prepared.manifests)), applied,
                          env=self.workspace.env, workspace_id=workspace_id, serial=serial,
                          source_set=owner, prune=True)  # fmt: skip
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
        registries = Registries(self.workspace.dir, self.workspace.root)
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
                have = self.installed().get(needed)
                if have is None or not satisfies(Version(str(have["version"])), wanted):
                    self._install_from_registry(f"{needed}@{wanted}", chain=(*chain, name),
                                                **{**options, "sets": (), "files": ()})  # fmt: skip
            outcome, prepared = self._install(archive, **options)
        if not options.get("dry_run"):
            from afctl.blueprints.lock import Lock

            Lock(self.workspace.root).pin(name, {"version": version, "digest": digest,
                                       "registry": registry.name})  # fmt: skip
        return outcome, prepared

    def install_locked(
        self, /, names: Sequence[str] = (), **options: Any
    ) -> list[tuple[ApplyOutcome, Prepared]]:
        """Install exactly what `afctl.lock` pins (every blueprint in it, or `names`): each
        locked version from its locked registry, refused when its digest differs from the
        lock's. The options are `blueprint_install`'s (sets, files, trust, dry_run, lock_timeout).

        Raises:
            UsageError: nothing is locked, a name is not, or a digest differs.
        """
        from afctl.blueprints.lock import Lock

        pinned = Lock(self.workspace.root).blueprints()
        if not pinned:
            raise UsageError(f"{self.workspace.root / 'afctl.lock'} pins no blueprint",
                             hint="afctl blueprint install NAME[@RANGE] writes it")  # fmt: skip
        unknown = [n for n in names if n not in pinned]
        if unknown:
            raise UsageError(f"afctl.lock does not pin {', '.join(unknown)}",
                             hint="locked: " + ", ".join(sorted(pinned)))  # fmt: skip
        settings = {"sets": (), "files": (), "trust": False, "dry_run": False,
                    "lock_timeout": DEFAULT_LOCK_TIMEOUT_S, **options,
                    "action": "Install"}  # fmt: skip
        return [
            self._install_from_registry(f"{name}@{pinned[name]['version']}", **settings)
            for name in (names or sorted(pinned))
        ]

    def _read_lock(self) -> dict[str, dict[str, Any]]:
        from afctl.blueprints.lock import Lock

        return Lock(self.workspace.root).blueprints()

    def upgrade(
        self,
        name: str,
        *,
        to: str | None = None,
        trust: bool = False,
        dry_run: bool = False,
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

        entry = self.installed().get(name)
        if entry is None:
            raise UsageError(f"blueprint {name} is not installed", hint="afctl blueprint list")
        from afctl.blueprints.lock import Lock

        Lock(self.workspace.root).pin(name, None)  # an upgrade moves the lock on
        with tempfile.TemporaryDirectory(prefix="afctl-values-") as scratch:
            values = Path(scratch) / "values.yaml"
            values.write_text(json.dumps(entry.get("values") or {}), "utf-8")
            return self._install_from_registry(
                f"{name}@{to or '*'}", sets=(), files=(str(values),), trust=trust,
                dry_run=dry_run, lock_timeout=lock_timeout, action="Upgrade",
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
        from afctl.blueprints.package import load
        from afctl.blueprints.store import BlueprintStore
        from afctl.durations import since_timestamp

        unknown = [b for b in by if b not in USAGE_GROUPS]
        if unknown or not by:
            raise UsageError(f"--by {','.join(by)}: use blueprint, agent and/or model")
        if "blueprint" not in by:
            by = ["blueprint", *by]
        store = BlueprintStore(self.workspace.dir)
        pricing = {}
        for name, entry in store.installed().items():
            folder = store.path_of(name, str(entry["version"]))
            if folder.is_dir():
                spec = load(folder).document.get("spec") or {}
                pricing[name] = spec.get("pricing") or {"model": "free"}
        rows = []
        for group, totals in self.logs.usage(by, since_timestamp(since) if since else None):
            price = pricing.get(str(group["blueprint"]), {"model": "unknown"})
            due = _amount_due(price, totals)
            currency = price.get("currency", "USD") if due is not None else None
            rows.append({**group, **dataclasses.asdict(totals), "pricing": price,
                         "amount_due": due, "currency": currency})  # fmt: skip
        return rows

    def registry_add(self, name: str, location: str) -> None:
        """Name a registry (a folder, relative to the current one, or an http(s) URL)."""
        from afctl.blueprints.registry import Registries

        Registries(self.workspace.dir, self.workspace.root).add(name, location, Path.cwd())

    def registries(self) -> dict[str, str]:
        """The registries this workspace names: name to location (folder or URL)."""
        from afctl.blueprints.registry import Registries

        return {
            r.name: r.location for r in Registries(self.workspace.dir, self.workspace.root).all()
        }

    def publish(self, archive: PathArg, registry: str) -> dict[str, Any]:
        """Add a checked archive to a folder registry (by name, or a folder path).

        Raises:
            UsageError: a refused archive, a URL registry, or a version already published
                with other content.
        """
        from afctl.blueprints.registry import Registries, Registry

        known = Registries(self.workspace.dir, self.workspace.root)
        if Path(registry).is_dir() or "/" in registry:  # a folder given directly
            target = Registry(registry, str(Path(registry).resolve()))
        else:
            target = known.named(registry)
        return target.publish(Path(archive))

    def search(self, text: str, category: str | None = None) -> list[dict[str, Any]]:
        """The latest version of each blueprint in the registries whose name, description or
        tags contain `text` (in the category, when given)."""
        from afctl.blueprints.registry import Registries

        return Registries(self.workspace.dir, self.workspace.root).search(text, category)

    def info(self, name: str) -> dict[str, Any]:
        """Every published version of a blueprint, with its metadata and pricing.

        Raises:
            UsageError: no registry has it.
        """
        from afctl.blueprints.registry import Registries

        for registry in Registries(self.workspace.dir, self.workspace.root).all():
            item = (registry.index().get("blueprints") or {}).get(name)
            if item:
                return {"name": name, "registry": registry.name, **item}
        raise UsageError(f"no registry has a blueprint named {name}",
                         hint=f"afctl blueprint search {name}")  # fmt: skip

    def uninstall(
        self,
        name: str,
        *,
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

        store = BlueprintStore(self.workspace.dir)
        entry = store.installed().get(name)
        if entry is None:
            raise UsageError(f"blueprint {name} is not installed", hint="afctl blueprint list")

        def make_plan(state: StateStore | None) -> Plan:
            from afctl.state.plan import build_plan

            applied, serial, workspace_id = self.state.snapshot(state)
            return build_plan(
                ManifestSet([]), applied, env=self.workspace.env, workspace_id=workspace_id,
                serial=serial, source_set=source_set(name), prune=True,
            )  # fmt: skip

        outcome = self.state.apply_locked(make_plan, confirm=self.state.asking("Uninstall"),
                                          lock_timeout=lock_timeout,
                                     command="afctl blueprint uninstall")  # fmt: skip
        if outcome.record is not None or not outcome.plan.has_changes:
            from afctl.blueprints.lock import Lock

            store.record(name, None)
            store.distrust(name)
            shutil.rmtree(store.folder / name, ignore_errors=True)
            Lock(self.workspace.root).pin(name, None)
        return outcome

    def installed(self) -> dict[str, dict[str, Any]]:
        """The installed blueprints: version, values, digest, resources, trust."""
        from afctl.blueprints.store import BlueprintStore

        store = BlueprintStore(self.workspace.dir)
        return {name: {**entry, "trusted": store.trusted(name)}
                for name, entry in sorted(store.installed().items())}  # fmt: skip

    def trust(self, name: str) -> TrustReview:
        """Grant installed blueprint `name` its local capabilities (python, commands, env,
        plugins), for exactly the content installed now; returns what was trusted.

        Raises:
            UsageError: it is not installed, or its files changed since it was installed.
        """
        from afctl.blueprints.install import trust_installed
        from afctl.blueprints.store import BlueprintStore

        return trust_installed(BlueprintStore(self.workspace.dir), name)

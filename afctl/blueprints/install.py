"""Turning a blueprint into manifests a workspace can apply: placed in the store, rendered
from the values, labelled as the blueprint's, with the paths that point into the blueprint
(python tools' import root, knowledge sources) rewritten to its place in the store."""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.blueprints.archive import (
    SAFE_NAME,
    ArchiveRefused,
    checked_identity,
    extract,
    pack,
    shown,
)
from afctl.blueprints.package import Blueprint, load, render, values_of
from afctl.blueprints.store import MANIFEST_COPY, BlueprintStore, content_digest
from afctl.blueprints.trust import TrustReview
from afctl.errors import ManifestError, UsageError
from afctl.manifests.model import Manifest
from afctl.safety.capabilities import Capabilities

LABEL = "afctl/blueprint"
VERSION_LABEL = "afctl/blueprint-version"


def source_set(name: str) -> str:
    """What an installed blueprint's resources are applied as: prune and uninstall touch
    exactly these."""
    return f"blueprint/{name}"


@dataclass
class Placed:
    folder: Path
    """Where its files are in the store."""
    digest: str
    """The archive's SHA-256."""
    manifest: dict[str, Any]
    """Its MANIFEST.json."""
    created: bool
    """Whether this install put it there (a failed install removes it again)."""

    @property
    def content_digest(self) -> str:
        return content_digest(self.manifest)


@dataclass
class Prepared:
    blueprint: Blueprint
    folder: Path
    """Where its files are in the store."""
    manifests: list[Manifest]
    values: dict[str, Any]
    digest: str
    python_tools: list[str]
    trusted: bool = False
    """Whether its local capabilities are granted (it is trusted, or is being trusted)."""
    review: TrustReview | None = None
    """Its capabilities and trust, as the plan shows them."""


def place(source: Path, store: BlueprintStore) -> Placed:
    """The blueprint from a folder or an archive, checked and placed in the store under
    NAME/VERSION (a folder is packed first, so both go through the same checks), with its
    MANIFEST.json beside it.

    Raises:
        UsageError: a refused archive, or that version is installed with other content.
    """
    scratch = Path(tempfile.mkdtemp(prefix=".incoming-", dir=_ensure(store.folder)))
    try:
        archive = source
        if source.is_dir():
            archive = scratch / "blueprint.afbp"
            pack(load(source), archive)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        folder, manifest = extract(archive, scratch)
        name, version = identity(folder, manifest, source)
        target = store.path_of(name, version)
        marker = target / ".digest"
        if target.exists():
            if marker.is_file() and marker.read_text().strip() == digest:
                return Placed(target, digest, manifest, False)
            raise UsageError(
                f"blueprint {name} {version} is already installed with other content",
                hint="give a changed blueprint a new version",
            )
        (folder / ".digest").write_text(digest + "\n")
        (folder / MANIFEST_COPY).write_text(json.dumps(manifest, sort_keys=True) + "\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.replace(target)  # atomic: the version appears whole or not at all
        return Placed(target, digest, manifest, True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def identity(folder: Path, manifest: dict[str, Any], source: Path) -> tuple[str, str]:
    """The name and version of an extracted blueprint, once MANIFEST.json and blueprint.yaml
    agree on them (nothing in the store is named before this holds).

    Raises:
        ArchiveRefused: they differ, or are not safe names.
        ManifestError: blueprint.yaml is invalid.
    """
    name, version = checked_identity(manifest.get("name"), manifest.get("version"), str(source))
    blueprint = load(folder)
    if (blueprint.name, blueprint.version) != (name, version):
        raise ArchiveRefused(
            f"{source}: MANIFEST.json says {name} {version}, but blueprint.yaml says "
            f"{shown(blueprint.name)} {shown(blueprint.version)}",
            hint="pack the blueprint again with afctl blueprint pack",
        )
    return name, version


def trust_placed(
    store: BlueprintStore,
    name: str,
    version: str,
    manifest: dict[str, Any],
    capabilities: Capabilities,
) -> None:
    """Trust NAME VERSION with exactly the content its MANIFEST.json lists."""
    files = {n: str((e or {}).get("sha256")) for n, e in manifest["files"].items()}
    store.trust(name, version, content_digest(manifest), capabilities.to_dict(), files)


def trust_installed(store: BlueprintStore, name: str) -> TrustReview:
    """Trust the content of `name` installed now (checked on disk first).

    Raises:
        UsageError: it is not installed, or its files differ from what was installed.
    """
    from afctl.blueprints.trust import changed_files

    entry = store.installed().get(name)
    if entry is None:
        raise UsageError(f"blueprint {name} is not installed", hint="afctl blueprint list")
    version = str(entry["version"])
    folder = store.path_of(name, version)
    manifest = store.manifest_of(name, version)
    if manifest is None:
        raise UsageError(
            f"blueprint {name} {version} was installed by an afctl that kept no checksums",
            hint="install it again (afctl blueprint install ...), then trust it",
        )
    changed = changed_files(folder, manifest)
    if changed:
        raise UsageError(
            f"the files of blueprint {name} changed since it was installed: "
            + ", ".join(changed[:5]),
            hint="install it again from its archive, then trust it",
        )
    capabilities = load(folder).capabilities
    if entry.get("content_digest") != content_digest(manifest):
        store.record(name, {**entry, "content_digest": content_digest(manifest),
                            "capabilities": capabilities.to_dict()})  # fmt: skip
    trust_placed(store, name, version, manifest, capabilities)
    return TrustReview(name, version, capabilities, True)


def requirements(manifest: dict[str, Any], source: Path) -> list[tuple[str, str]]:
    """(name, version range) of each blueprint an archive's metadata `requires`.

    Raises:
        ArchiveRefused: `requires` is not a list of {name, version}.
    """
    listed = manifest["metadata"]["content"].get("requires") or []
    found = []
    for item in listed if isinstance(listed, list) else [listed]:
        name = item.get("name") if isinstance(item, dict) else None
        wanted = item.get("version", "*") if isinstance(item, dict) else None
        if (
            not isinstance(name, str)
            or not SAFE_NAME.fullmatch(name)
            or not isinstance(wanted, str)
        ):
            raise ArchiveRefused(
                f"{source}: requires {shown(json.dumps(item, default=str))}: "
                "give each requirement a name and a version range"
            )
        found.append((name, wanted))
    return found


def discard(folder: Path) -> None:
    """Remove a placed version (and its blueprint's folder when that leaves it empty)."""
    shutil.rmtree(folder, ignore_errors=True)
    try:
        folder.parent.rmdir()
    except OSError:
        pass  # other versions are there


def _ensure(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def prepare(placed: Placed, root: Path, sets: list[str], files: list[str]) -> Prepared:
    """The placed blueprint rendered into labelled manifests ready to plan.

    Raises:
        UsageError: values that do not fit, or the store is outside the repository.
        ManifestError: a template fails, the rendered manifests are invalid, or they use
            what the blueprint does not declare.
    """
    from afctl.manifests.yaml_loader import load_bytes

    folder, digest = placed.folder, placed.digest
    blueprint = load(folder)
    check_afctl_version(blueprint)
    values = values_of(blueprint, sets, files)
    try:
        relative = folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise UsageError(
            f"the blueprint store {folder} is outside the repository {root}",
            hint="keep the workspace (.afctl) inside the repository",
        ) from None
    manifests, python_tools = [], []
    for item in render(blueprint, values):
        loaded = load_bytes(item.text.encode(), item.path)
        problems = [d for d in loaded.diagnostics if d.is_error]
        if problems:
            raise ManifestError(problems)
        for index, document in enumerate(loaded.documents):
            data = document.data
            if not isinstance(data, dict):
                continue
            metadata = data.setdefault("metadata", {})
            labels = metadata.setdefault("labels", {})
            labels[LABEL] = blueprint.name
            labels[VERSION_LABEL] = blueprint.version
            spec = data.get("spec") or {}
            if data.get("kind") == "Tool" and spec.get("type") == "python":
                spec["root"] = relative
                python_tools.append(str(metadata.get("name")))
            if data.get("kind") == "KnowledgePack":
                for entry in spec.get("sources") or []:
                    if isinstance(entry, dict) and "path" in entry:
                        entry["path"] = f"{relative}/{_own_path(entry['path'], item.path)}"
            manifests.append(Manifest(str(data.get("kind")), str(metadata.get("name")), data,
                                      f"{relative}/{item.path}", document.line, index))  # fmt: skip
    from afctl.blueprints.uses import undeclared

    documents = [(m.kind, m.data, m.file, m.line) for m in manifests]
    problems = undeclared(documents, blueprint.capabilities, folder)
    if problems:
        raise ManifestError(
            problems, f"blueprint {blueprint.name} uses what its blueprint.yaml does not declare"
        )
    return Prepared(blueprint, folder, manifests, values, digest, python_tools)


def _own_path(path: object, file: str) -> str:
    """A path inside the blueprint (a knowledge source).

    Raises:
        ManifestError: it is absolute or climbs out with `..`.
    """
    text = str(path)
    if text.startswith("/") or "\\" in text or ".." in text.split("/"):
        from afctl.diagnostics import error

        raise ManifestError(
            [error("blueprint.path", f"the path {shown(text)} leaves the blueprint's folder",
                   file=file, hint="knowledge sources are files of the blueprint itself")]
        )  # fmt: skip
    return text


def check_afctl_version(blueprint: Blueprint) -> None:
    """Raises UsageError when the blueprint needs another afctl (its `afctl_version`)."""
    from afctl._version import __version__
    from afctl.blueprints.semver import Version, satisfies

    wanted = (blueprint.document.get("spec") or {}).get("afctl_version")
    if wanted and not satisfies(Version(__version__), str(wanted)):
        raise UsageError(
            f"blueprint {blueprint.name} {blueprint.version} needs afctl {wanted}; "
            f"this is afctl {__version__}",
            hint="upgrade afctl, or install a version of the blueprint made for this one",
        )


def validate(prepared: Prepared) -> None:
    """The prepared manifests checked like any others (schema, references).

    Raises:
        ManifestError: they are invalid.
    """
    from afctl.manifests.discovery import Source
    from afctl.manifests.validate import validate_sources

    with tempfile.TemporaryDirectory(prefix="afctl-install-") as scratch:
        sources = []
        for index, manifest in enumerate(prepared.manifests):
            path = Path(scratch) / f"{index}.yaml"
            path.write_text(json.dumps(manifest.data), "utf-8")
            shown = f"{manifest.file} (rendered, document {manifest.document + 1})"
            sources.append(Source(shown, str(path), str(path)))
        result, _ = validate_sources(sources)
    if not result.valid:
        raise ManifestError(result.diagnostics, sources=result.sources)

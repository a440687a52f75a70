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
from afctl.blueprints.store import BlueprintStore
from afctl.errors import ManifestError, UsageError
from afctl.manifests.model import Manifest

LABEL = "afctl/blueprint"
VERSION_LABEL = "afctl/blueprint-version"


def source_set(name: str) -> str:
    """What an installed blueprint's resources are applied as: prune and uninstall touch
    exactly these."""
    return f"blueprint/{name}"


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
    """Whether its python tools may run (the blueprint is trusted, or is being trusted)."""


def place(source: Path, store: BlueprintStore) -> tuple[Path, str, bool]:
    """The blueprint from a folder or an archive, checked and placed in the store under
    NAME/VERSION (a folder is packed first, so both go through the same checks); returns its
    place, the archive's SHA-256, and whether this call put it there.

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
                return target, digest, False
            raise UsageError(
                f"blueprint {manifest['name']} {manifest['version']} is already installed "
                "with other content",
                hint="give a changed blueprint a new version",
            )
        (folder / ".digest").write_text(digest + "\n")
        target.parent.mkdir(parents=True, exist_ok=True)
        folder.replace(target)  # atomic: the version appears whole or not at all
        return target, digest, True
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


def prepare(folder: Path, digest: str, root: Path, sets: list[str], files: list[str]) -> Prepared:
    """The blueprint at `folder` rendered into labelled manifests ready to plan.

    Raises:
        UsageError: values that do not fit, or the store is outside the repository.
        ManifestError: a template fails, or the rendered manifests are invalid.
    """
    from afctl.manifests.yaml_loader import load_bytes

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
                        entry["path"] = f"{relative}/{entry['path']}"
            manifests.append(Manifest(str(data.get("kind")), str(metadata.get("name")), data,
                                      f"{relative}/{item.path}", document.line, index))  # fmt: skip
    return Prepared(blueprint, folder, manifests, values, digest, python_tools)


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

"""Blueprint registries: a folder or a static HTTP(S) URL holding `index.json` and the
`.afbp` files. Workspaces name them in `.afctl/registries.json` (`afctl registry add`).

    index.json  {"format": "afctl.registry/v1",
                 "blueprints": {NAME: {"versions": {VERSION: {"file": "NAME-VERSION.afbp",
                                "digest": SHA-256, "metadata": {...}, "published_at": ...}}}}}

Publishing writes only to folder registries (a static site is published by copying such a
folder). Every download is checked against the index's digest before it is read.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.blueprints.archive import inspect, shown
from afctl.blueprints.semver import Version, best
from afctl.errors import UsageError
from afctl.files import write_atomically
from afctl.ids import utc_now

FORMAT = "afctl.registry/v1"
CONFIG = "registries.json"
MAX_INDEX = 20 * 1024 * 1024
_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,254}\.afbp")
"""An archive's name in index.json: one plain file name beside it."""


def _is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


@dataclass(frozen=True)
class Registry:
    name: str
    location: str
    """An absolute folder, or an http(s) URL."""

    def _fetch(self, relative: str, limit: int) -> bytes:
        if _is_url(self.location):
            import httpx2

            url = self.location.rstrip("/") + "/" + relative
            try:
                response = httpx2.get(url, timeout=30, follow_redirects=True)
            except httpx2.HTTPError as exc:
                raise UsageError(f"registry {self.name}: cannot fetch {url}: {exc}") from None
            if response.status_code != 200:
                raise UsageError(f"registry {self.name}: {url} answered {response.status_code}")
            if len(response.content) > limit:
                raise UsageError(f"registry {self.name}: {url} is over {limit} bytes")
            return response.content
        try:
            return (Path(self.location) / relative).read_bytes()
        except OSError as exc:
            raise UsageError(
                f"registry {self.name}: cannot read {relative}: {exc.strerror}"
            ) from None

    def index(self) -> dict[str, Any]:
        """The registry's index (an empty one for a new folder registry)."""
        if not _is_url(self.location) and not (Path(self.location) / "index.json").exists():
            return {"format": FORMAT, "blueprints": {}}
        try:
            data = json.loads(self._fetch("index.json", MAX_INDEX))
        except ValueError:
            raise UsageError(f"registry {self.name}: index.json is not JSON") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UsageError(f"registry {self.name}: index.json is not an {FORMAT} index")
        return data

    def download(self, name: str, version: str, target: Path) -> str:
        """The archive of NAME VERSION written to `target`, checked against the index's
        digest; returns the digest.

        Raises:
            UsageError: not in this registry, or the file does not match its digest.
        """
        entry = (
            ((self.index().get("blueprints") or {}).get(name) or {})
            .get("versions", {})
            .get(version)
        )
        if not isinstance(entry, dict):
            raise UsageError(f"registry {self.name} has no {name} {version}")
        file = entry.get("file")
        if not isinstance(file, str) or not _FILE.fullmatch(file):
            raise UsageError(
                f"registry {self.name}: index.json names the file of {name} {version} "
                f"{shown(str(file))}, not a plain .afbp file name",
                hint="the index was changed by hand or is hostile; do not use this registry",
            )
        data = self._fetch(file, 200 * 1024 * 1024)
        digest = hashlib.sha256(data).hexdigest()
        if digest != entry.get("digest"):
            raise UsageError(
                f"registry {self.name}: {file} does not match its digest in index.json",
                hint="the file or the index was changed after publishing; do not install it",
            )
        target.write_bytes(data)
        return digest

    def publish(self, archive: Path) -> dict[str, Any]:
        """Add a checked archive to this folder registry; returns its index entry.

        Raises:
            UsageError: not a folder registry, a refused archive, or that version is
                published already with other content.
        """
        if _is_url(self.location):
            raise UsageError(
                f"registry {self.name} is a URL; publish to a folder and serve it",
                hint="afctl registry add local ./registry",
            )
        manifest, _ = inspect(archive)
        name, version = str(manifest["name"]), str(manifest["version"])
        data = archive.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        folder = Path(self.location)
        folder.mkdir(parents=True, exist_ok=True)
        index = self.index()
        versions = index["blueprints"].setdefault(name, {"versions": {}})["versions"]
        known = versions.get(version)
        if known and known.get("digest") != digest:
            raise UsageError(
                f"{name} {version} is already published with other content",
                hint="publish a changed blueprint under a new version",
            )
        file = f"{name}-{version}.afbp"
        write_atomically(folder / file, data)
        entry = {"file": file, "digest": digest, "size": len(data),
                 "metadata": manifest["metadata"]["content"],
                 "published_at": (known or {}).get("published_at") or utc_now()}  # fmt: skip
        versions[version] = entry
        write_atomically(folder / "index.json", json.dumps(index, indent=2, sort_keys=True) + "\n")
        return entry


class Registries:
    """The registries a repository knows: those in its committed `afctl.lock` (in the order
    they were added), then any an earlier afctl kept in the workspace."""

    def __init__(self, workspace: Path, root: Path) -> None:
        from afctl.blueprints.lock import Lock

        self.file = workspace / "blueprints" / CONFIG
        self.lock = Lock(root)

    def all(self) -> list[Registry]:
        found = dict(self.lock.registries())
        try:
            legacy = json.loads(self.file.read_text("utf-8"))
        except (OSError, ValueError):
            legacy = {}
        for name, location in legacy.items() if isinstance(legacy, dict) else []:
            found.setdefault(str(name), str(location))
        return [Registry(name, location) for name, location in found.items()]

    def add(self, name: str, location: str, base: Path) -> Registry:
        """Raises: UsageError: a bad name, or a folder that is a file."""

        if not re.fullmatch(r"[a-z0-9][-a-z0-9]*", name):
            raise UsageError(f"registry name {name!r}: use lowercase letters, digits and -")
        if not _is_url(location):
            folder = (base / location).resolve()
            if folder.exists() and not folder.is_dir():
                raise UsageError(f"{location} is a file; a registry is a folder or a URL")
            location = str(folder)
        self.lock.add_registry(name, location)
        return Registry(name, location)

    def named(self, name: str) -> Registry:
        for registry in self.all():
            if registry.name == name:
                return registry
        raise UsageError(f"no registry named {name}", hint="afctl registry add NAME URL")

    def resolve(self, name: str, spec: str = "*") -> tuple[Registry, str, dict[str, Any]]:
        """The registry and highest version of `name` in the range, with its entry.

        Raises:
            UsageError: no registry has a matching version.
        """
        found: list[tuple[Version, Registry, dict[str, Any]]] = []
        for registry in self.all():
            versions = ((registry.index().get("blueprints") or {}).get(name) or {}).get(
                "versions", {}
            )
            chosen = best(list(versions), spec)
            if chosen is not None:
                found.append((Version(chosen), registry, versions[chosen]))
        if not found:
            where = ", ".join(r.name for r in self.all()) or "no registries configured"
            raise UsageError(f"no version of {name} matches {spec!r} ({where})",
                             hint="afctl blueprint search " + name)  # fmt: skip
        version, registry, entry = max(found, key=lambda item: item[0])
        return registry, version.text, entry

    def search(self, text: str, category: str | None = None) -> list[dict[str, Any]]:
        """The latest version of each blueprint whose name, description or tags contain
        `text` (in the category, when given)."""
        needle = text.lower()
        results = []
        for registry in self.all():
            for name, item in sorted((registry.index().get("blueprints") or {}).items()):
                versions = item.get("versions") or {}
                latest = best(list(versions), "*")
                if latest is None:
                    continue
                meta = versions[latest].get("metadata") or {}
                haystack = " ".join([name, str(meta.get("description") or ""),
                                     " ".join(meta.get("tags") or [])]).lower()  # fmt: skip
                if needle in haystack and (category is None or meta.get("category") == category):
                    results.append({"registry": registry.name, "name": name, "version": latest,
                                    "category": meta.get("category"),
                                    "description": meta.get("description"),
                                    "pricing": meta.get("pricing")})  # fmt: skip
        return results

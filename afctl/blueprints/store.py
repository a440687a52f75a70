"""The workspace's blueprint store, `.afctl/blueprints/`: each installed blueprint's files in
`NAME/VERSION/` (extracted from its checked archive, with `.digest` and `.manifest.json`, its
MANIFEST.json), `installed.json` (what is installed, with the values used, its content digest
and capabilities) and `trusted.json` (the content digest of each trusted blueprint: trust
binds to exactly that content, like terraform's lock hashes)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.files import write_atomically
from afctl.ids import utc_now

STORE = "blueprints"
MANIFEST_COPY = ".manifest.json"


def content_digest(manifest: dict[str, Any]) -> str:
    """The SHA-256 of a blueprint's content: every file's hash and its metadata's, as
    MANIFEST.json lists them (the same whoever packed the archive, and however)."""
    from afctl.blueprints.package import canonical

    files = {name: entry.get("sha256") for name, entry in sorted(manifest["files"].items())}
    body = {"files": files, "metadata": (manifest.get("metadata") or {}).get("sha256")}
    return hashlib.sha256(canonical(body)).hexdigest()


@dataclass
class BlueprintStore:
    workspace: Path

    @property
    def folder(self) -> Path:
        return self.workspace / STORE

    def path_of(self, name: str, version: str) -> Path:
        """Where NAME VERSION lives (both checked to be plain path components first)."""
        from afctl.blueprints.archive import checked_identity

        name, version = checked_identity(name, version, "the blueprint store")
        return self.folder / name / version

    def manifest_of(self, name: str, version: str) -> dict[str, Any] | None:
        """The MANIFEST.json a placed version was extracted with."""
        try:
            data = json.loads((self.path_of(name, version) / MANIFEST_COPY).read_text("utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None

    def _read(self, file: str) -> dict[str, Any]:
        try:
            data = json.loads((self.folder / file).read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, file: str, data: dict[str, Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomically(self.folder / file, json.dumps(data, indent=2, sort_keys=True) + "\n")

    def installed(self) -> dict[str, dict[str, Any]]:
        """name -> {version, values, digest, content_digest, capabilities, installed_at, env}"""
        return self._read("installed.json")

    def record(self, name: str, entry: dict[str, Any] | None) -> None:
        """Record an install (or, with None, an uninstall)."""
        data = self.installed()
        if entry is None:
            data.pop(name, None)
        else:
            data[name] = {**entry, "installed_at": utc_now()}
        self._write("installed.json", data)

    def trust_record(self, name: str) -> dict[str, Any] | None:
        """What was trusted of `name`: {version, digest, capabilities, files, trusted_at}."""
        entry = self._read("trusted.json").get(name)
        return entry if isinstance(entry, dict) else None

    def trusted(self, name: str, digest: str | None = None) -> bool:
        """Whether `name` is trusted with exactly the content `digest` (by default, the content
        installed now)."""
        if digest is None:
            digest = (self.installed().get(name) or {}).get("content_digest")
        record = self.trust_record(name)
        return bool(digest) and record is not None and record.get("digest") == digest

    def trust(
        self,
        name: str,
        version: str,
        digest: str,
        capabilities: dict[str, list[str]],
        files: dict[str, str],
    ) -> None:
        data = self._read("trusted.json")
        data[name] = {"version": version, "digest": digest, "capabilities": capabilities,
                      "files": files, "trusted_at": utc_now()}  # fmt: skip
        self._write("trusted.json", data)

    def distrust(self, name: str) -> None:
        data = self._read("trusted.json")
        data.pop(name, None)
        self._write("trusted.json", data)

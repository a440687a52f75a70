"""`afctl.lock`, at the repository root and committed: the registries the repository installs
from, and each blueprint installed from one, pinned by version, digest and registry (like
terraform's lock file), so a teammate's `afctl blueprint install --locked` gets exactly the
same content.

    {"format": "afctl.lock/v1",
     "registries": {"local": "registry", "hub": "https://blueprints.example/"},
     "blueprints": {"support-desk": {"version": "1.0.0", "digest": "...", "registry": "local"}}}

A registry folder inside the repository is written relative to its root, so the file works in
any clone; one outside it, or a URL, as it is.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.files import write_atomically

FORMAT = "afctl.lock/v1"
FILE = "afctl.lock"


@dataclass
class Lock:
    root: Path
    """The repository root, where the file is."""

    @property
    def file(self) -> Path:
        return self.root / FILE

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.file.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _write(self, data: dict[str, Any]) -> None:
        written: dict[str, Any] = {"format": FORMAT, "blueprints": data.get("blueprints") or {}}
        if data.get("registries"):
            written["registries"] = data["registries"]
        write_atomically(self.file, json.dumps(written, indent=2, sort_keys=True) + "\n")

    def blueprints(self) -> dict[str, dict[str, Any]]:
        entries = self._read().get("blueprints")
        return {str(k): dict(v) for k, v in entries.items() if isinstance(v, dict)} if (
            isinstance(entries, dict)) else {}  # fmt: skip

    def pin(self, name: str, entry: dict[str, Any] | None) -> None:
        """Record (or, with None, forget) what `name` is locked to."""
        data = self._read()
        entries = self.blueprints()
        if entry is None:
            if name not in entries:
                return
            entries.pop(name)
        else:
            entries[name] = entry
        self._write({**data, "blueprints": entries})

    def registries(self) -> dict[str, str]:
        """name -> location (a folder, absolute; or a URL)."""
        found = self._read().get("registries")
        if not isinstance(found, dict):
            return {}
        return {str(name): self._absolute(str(where)) for name, where in found.items()}

    def add_registry(self, name: str, location: str) -> None:
        data = self._read()
        registries = dict(data.get("registries") or {})
        registries[name] = self._relative(location)
        self._write({**data, "registries": registries})

    def _relative(self, location: str) -> str:
        if location.startswith(("http://", "https://")):
            return location
        try:
            return Path(location).resolve().relative_to(self.root.resolve()).as_posix() or "."
        except ValueError:
            return location

    def _absolute(self, location: str) -> str:
        if location.startswith(("http://", "https://")) or Path(location).is_absolute():
            return location
        return str((self.root / location).resolve())

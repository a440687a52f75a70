"""The workspace's blueprint store, `.afctl/blueprints/`: each installed blueprint's files in
`NAME/VERSION/` (extracted from its checked archive), `installed.json` (what is installed,
with the values used) and `trusted.json` (blueprints whose python tools may run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.files import write_atomically
from afctl.ids import utc_now

STORE = "blueprints"


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
        """name -> {version, values, digest, installed_at, env}"""
        return self._read("installed.json")

    def record(self, name: str, entry: dict[str, Any] | None) -> None:
        """Record an install (or, with None, an uninstall)."""
        data = self.installed()
        if entry is None:
            data.pop(name, None)
        else:
            data[name] = {**entry, "installed_at": utc_now()}
        self._write("installed.json", data)

    def trusted(self, name: str) -> bool:
        return name in self._read("trusted.json")

    def trust(self, name: str, version: str) -> None:
        data = self._read("trusted.json")
        data[name] = {"version": version, "trusted_at": utc_now()}
        self._write("trusted.json", data)

    def distrust(self, name: str) -> None:
        data = self._read("trusted.json")
        data.pop(name, None)
        self._write("trusted.json", data)

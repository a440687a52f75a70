"""Caches of validation results, so an unchanged repository validates in a fraction of a second.

Everything a file's own checks produce depends on its bytes, the afctl version, the schemas and
the installed plugins (which may add model providers), so a result stored under the file's
content hash, in a cache stamped with (afctl version, schema hash, plugin fingerprint), can be
reused whatever the file is called. Checks across files run on the
cached per-file summaries whenever anything changed.

When nothing changed at all (the same files with the same contents, under the same names) the
whole result of the last runs is reused: a small second file holds it, so that case reads
neither the per-file entries nor runs the cross-file checks.

A cache that cannot be read is ignored and rebuilt; one that cannot be written is skipped: the
cache never changes what validate reports.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FORMAT = 2
MAX_ENTRIES = 50_000
MAX_RUNS = 8


def _read_section(path: Path, stamp: str, key: str) -> dict[str, Any]:
    """The mapping stored under `key`, or an empty one if the file is missing, foreign or bad."""
    try:
        raw = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return {}
    if isinstance(raw, dict) and raw.get("format") == FORMAT and raw.get("stamp") == stamp:
        section = raw.get(key)
        if isinstance(section, dict):
            return section
    return {}


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (temp file, then rename); give up quietly when the disk says no."""
    from afctl.files import write_atomically

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, json.dumps(payload, separators=(",", ":")))
    except OSError:
        return


class ValidationCache:
    def __init__(self, path: Path, stamp: str) -> None:
        self.path = path
        """The per-file entries; the whole-run results live beside it (`*-runs.json`)."""
        self.runs_path = path.with_name(path.stem + "-runs.json")
        self.stamp = stamp
        self._entries: dict[str, Any] | None = None
        self._used: set[str] = set()
        self._dirty = False
        self._runs: dict[str, Any] | None = None
        self._runs_dirty = False

    # -- whole runs ------------------------------------------------------------------------

    def _load_runs(self) -> dict[str, Any]:
        if self._runs is None:
            self._runs = _read_section(self.runs_path, self.stamp, "runs")
        return self._runs

    def get_run(self, key: str) -> Any | None:
        return self._load_runs().get(key)

    def put_run(self, key: str, result: Any) -> None:
        runs = self._load_runs()
        runs.pop(key, None)
        runs[key] = result
        while len(runs) > MAX_RUNS:
            runs.pop(next(iter(runs)))
        self._runs_dirty = True

    # -- per-file entries ------------------------------------------------------------------

    def _load_entries(self) -> dict[str, Any]:
        if self._entries is None:
            self._entries = _read_section(self.path, self.stamp, "entries")
        return self._entries

    def get(self, digest: str) -> Any | None:
        entry = self._load_entries().get(digest)
        if entry is not None:
            self._used.add(digest)
        return entry

    def put(self, digest: str, entry: Any) -> None:
        self._load_entries()[digest] = entry
        self._used.add(digest)
        self._dirty = True

    def save(self) -> None:
        """Write what changed; per-file entries used in this run are kept first."""
        if self._dirty and self._entries is not None:
            entries = {k: self._entries[k] for k in self._used if k in self._entries}
            for key, value in self._entries.items():
                if len(entries) >= MAX_ENTRIES:
                    break
                entries.setdefault(key, value)
            _write_json(self.path, {"format": FORMAT, "stamp": self.stamp, "entries": entries})
            self._dirty = False
        if self._runs_dirty and self._runs is not None:
            _write_json(self.runs_path, {"format": FORMAT, "stamp": self.stamp, "runs": self._runs})
            self._runs_dirty = False


def default_cache_path(workspace: Path | None) -> Path:
    """`.afctl/cache/validate.json` in the workspace, else the user's cache folder."""
    override = os.environ.get("AFCTL_CACHE_DIR")
    if override:
        return Path(override) / "validate.json"
    if workspace is not None:
        return workspace / "cache" / "validate.json"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "afctl" / "validate.json"

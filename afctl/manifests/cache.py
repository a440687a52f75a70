"""A cache of per-file validation results, keyed only by the file's content hash.

Everything a file's own checks produce depends on its bytes, the afctl version and the schemas,
so a result stored under (content hash) inside a cache stamped with (afctl version, schema hash)
can be reused whatever the file is called. Checks across files are never cached; they run on
the cached summaries each time. A cache that cannot be read is ignored and rebuilt; one that
cannot be written is skipped: the cache never changes what validate reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

FORMAT = 1
MAX_ENTRIES = 50_000


class ValidationCache:
    def __init__(self, path: Path, stamp: str) -> None:
        self.path = path
        self.stamp = stamp
        self._entries: dict[str, Any] = {}
        self._used: set[str] = set()
        self._dirty = False
        self._load()

    def _load(self) -> None:
        try:
            raw = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return
        if (
            isinstance(raw, dict)
            and raw.get("format") == FORMAT
            and raw.get("stamp") == self.stamp
            and isinstance(raw.get("entries"), dict)
        ):
            self._entries = raw["entries"]

    def get(self, digest: str) -> Any | None:
        entry = self._entries.get(digest)
        if entry is not None:
            self._used.add(digest)
        return entry

    def put(self, digest: str, entry: Any) -> None:
        self._entries[digest] = entry
        self._used.add(digest)
        self._dirty = True

    def save(self) -> None:
        """Write the cache atomically; entries used in this run are kept first."""
        if not self._dirty:
            return
        entries = {k: self._entries[k] for k in self._used}
        for key, value in self._entries.items():
            if len(entries) >= MAX_ENTRIES:
                break
            entries.setdefault(key, value)
        payload = {"format": FORMAT, "stamp": self.stamp, "saved": time.time(), "entries": entries}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(dir=self.path.parent, prefix=".validate-", suffix=".tmp")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump(payload, handle, separators=(",", ":"))
                Path(temp).replace(self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    Path(temp).unlink()
                raise
        except OSError:
            return
        self._dirty = False


def default_cache_path(workspace: Path | None) -> Path:
    """`.afctl/cache/validate.json` in the workspace, else the user's cache folder."""
    override = os.environ.get("AFCTL_CACHE_DIR")
    if override:
        return Path(override) / "validate.json"
    if workspace is not None:
        return workspace / "cache" / "validate.json"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "afctl" / "validate.json"

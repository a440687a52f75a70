"""Paths confined to a root folder, for the built-in file tools.

Resolve, then check: a path is refused when it is absolute, contains `..` or a NUL byte, or
resolves (following symlinks) to somewhere outside the root.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from afctl.errors import RunError


class PathRefused(RunError):
    """A tool asked for a path outside its sandbox."""


def inside(root: Path, requested: str) -> Path:
    """The real path of `requested` under `root`.

    Raises:
        PathRefused: the path would leave the root (or is not a plain relative path).
    """
    if not isinstance(requested, str) or "\x00" in requested:
        raise PathRefused("the path must be text without NUL bytes")
    text = requested.replace("\\", "/")
    if text.startswith("/") or Path(requested).is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise PathRefused(f"absolute paths are not allowed: {requested!r}")
    if ".." in PurePosixPath(text).parts:
        raise PathRefused(f"'..' is not allowed in paths: {requested!r}")
    base = root.resolve()
    resolved = (base / text).resolve()
    if resolved != base and base not in resolved.parents:
        raise PathRefused(f"{requested!r} leads outside the tool's folder")
    return resolved

"""Which files `-f PATH...` means: files as given, directories walked recursively.

A directory walk reads `*.yaml` and `*.yml` files and skips:
- hidden files and folders (`.git`, `.github`, `.afctl`, `.venv`, ...);
- `node_modules` and Python virtual environments (folders holding `pyvenv.cfg`);
- the inside of blueprint folders (a folder holding `blueprint.yaml`): only `blueprint.yaml`
  itself is a manifest, the rest are templates that `afctl blueprint` renders;
- paths matching a pattern in an `.afctlignore` file at the top of the walked directory
  (one glob per line, matched against the path relative to that directory; a trailing `/`
  matches folders; `#` starts a comment).

A file named explicitly is always read, whatever its extension. `-` reads standard input.
`Uploaded` manifests (sent to `afctl serve` by a remote client) are read from memory.
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from afctl.errors import UsageError

STDIN = "-"
MANIFEST_SUFFIXES = (".yaml", ".yml")
IGNORE_FILE = ".afctlignore"
_SKIP_DIRS = {"node_modules", "__pycache__"}


class Source(NamedTuple):
    """A file to read: `display` is how diagnostics name it; `path` is None for stdin (or an
    uploaded file, whose bytes are `data`)."""

    display: str
    path: str | None
    key: str = ""
    """The file's canonical path, to read each file once."""
    data: bytes | None = None


@dataclass(frozen=True)
class Uploaded:
    """Manifests sent over the API instead of read here: each file's bytes by the path its
    sender shows it as (relative to the sender's repository root), and the paths the sender
    was given (`-f`), which name the source set as they would on the sender's machine."""

    files: tuple[tuple[str, bytes], ...]
    given: tuple[str, ...] = (".",)


def _display(path: str) -> str:
    normal = os.path.normpath(path)
    return normal[2:] if normal.startswith("./") else normal


def _ignore_patterns(root: Path) -> list[str]:
    try:
        lines = (root / IGNORE_FILE).read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _ignored(relative: str, is_dir: bool, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/"):
            if not is_dir:
                continue
            pattern = pattern[:-1]
        pattern = pattern.lstrip("/")
        if fnmatch.fnmatch(relative, pattern) or (
            "/" not in pattern and fnmatch.fnmatch(relative.rsplit("/", 1)[-1], pattern)
        ):
            return True
    return False


def _walk(root: Path, given: str) -> list[Source]:
    # Plain strings and scandir: pathlib and os.walk cost more than checking cached files.
    patterns = _ignore_patterns(root)
    found: list[Source] = []
    real_top = os.path.realpath(root)
    shown_top = _display(given)
    shown_prefix = "" if shown_top == "." else shown_top + "/"
    pending = [(os.fspath(root), "")]
    while pending:
        folder, prefix = pending.pop()
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError:
            continue
        names = {entry.name for entry in entries}
        if prefix and "blueprint.yaml" in names:
            entries = [e for e in entries if e.name == "blueprint.yaml"]
        subfolders = []
        for entry in entries:
            name = entry.name
            if name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                if name in _SKIP_DIRS or (prefix and "blueprint.yaml" in names):
                    continue
                if os.path.exists(os.path.join(entry.path, "pyvenv.cfg")):  # noqa: PTH110, PTH118
                    continue
                if patterns and _ignored(prefix + name, True, patterns):
                    continue
                subfolders.append((entry.path, prefix + name + "/"))
            elif name.endswith(MANIFEST_SUFFIXES):
                if patterns and _ignored(prefix + name, False, patterns):
                    continue
                relative = prefix + name
                found.append(Source(shown_prefix + relative, entry.path, f"{real_top}/{relative}"))
        pending.extend(reversed(subfolders))
    return found


def discover(paths: list[str | Uploaded] | tuple[str | Uploaded, ...]) -> list[Source]:
    """The files named by `paths`, each once, in a stable order.

    Raises:
        UsageError: a path does not exist, or nothing at all was found.
    """
    if not paths:
        raise UsageError(
            "no manifests given", hint="pass -f PATH (a file, a folder, or - for stdin)"
        )
    sources: list[Source] = []
    seen: set[str] = set()
    for given in paths:
        if isinstance(given, Uploaded):
            for name, data in given.files:
                if "upload:" + name not in seen:
                    seen.add("upload:" + name)
                    sources.append(Source(name, None, "upload:" + name, data))
            continue
        if given == STDIN:
            sources.append(Source("<stdin>", None, STDIN))
            continue
        path = Path(given)
        if path.is_dir():
            found = _walk(path, given)
            if not found:
                raise UsageError(
                    f"-f {given}: no .yaml or .yml files found in this folder",
                    hint="point -f at a folder with manifests, or at a manifest file",
                )
        elif path.exists() or path.is_symlink():
            found = [Source(_display(given), given, os.path.realpath(given))]
        else:
            raise UsageError(f"-f {given}: no such file or folder")
        for source in found:
            if source.key not in seen:
                seen.add(source.key)
                sources.append(source)
    return sources

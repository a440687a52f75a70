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
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass
from pathlib import Path

from afctl.errors import UsageError

STDIN = "-"
MANIFEST_SUFFIXES = (".yaml", ".yml")
IGNORE_FILE = ".afctlignore"
_SKIP_DIRS = {"node_modules", "__pycache__"}


@dataclass(frozen=True)
class Source:
    """A file to read: `display` is how diagnostics name it; `path` is None for stdin."""

    display: str
    path: Path | None


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
    patterns = _ignore_patterns(root)
    found: list[Source] = []
    for current, dirs, files in os.walk(root):
        here = Path(current)
        relative_dir = here.relative_to(root).as_posix()
        prefix = "" if relative_dir == "." else relative_dir + "/"
        if here != root and "blueprint.yaml" in files:
            dirs[:] = []
            files = ["blueprint.yaml"]
        kept = []
        for name in sorted(dirs):
            if name.startswith(".") or name in _SKIP_DIRS:
                continue
            if (here / name / "pyvenv.cfg").exists():
                continue
            if _ignored(prefix + name, True, patterns):
                continue
            kept.append(name)
        dirs[:] = kept
        for name in sorted(files):
            if name.startswith(".") or not name.endswith(MANIFEST_SUFFIXES):
                continue
            if _ignored(prefix + name, False, patterns):
                continue
            found.append(Source(_display(f"{given}/{prefix}{name}"), here / name))
    return found


def discover(paths: list[str] | tuple[str, ...]) -> list[Source]:
    """The files named by `paths`, each once, in a stable order.

    Raises:
        UsageError: a path does not exist, or nothing at all was found.
    """
    if not paths:
        raise UsageError(
            "no manifests given", hint="pass -f PATH (a file, a folder, or - for stdin)"
        )
    sources: list[Source] = []
    seen: set[Path] = set()
    for given in paths:
        if given == STDIN:
            sources.append(Source("<stdin>", None))
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
            found = [Source(_display(given), path)]
        else:
            raise UsageError(f"-f {given}: no such file or folder")
        for source in found:
            assert source.path is not None
            key = source.path.resolve()
            if key not in seen:
                seen.add(key)
                sources.append(source)
    return sources

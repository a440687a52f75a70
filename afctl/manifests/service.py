"""Checking and loading manifests for a context (`validate`, `load`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from afctl.console import Console
from afctl.errors import ManifestError
from afctl.manifests.discovery import Uploaded
from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.manifests.model import ManifestSet
    from afctl.manifests.validate import ValidationResult

PathArg = str | os.PathLike[str]
Paths = PathArg | Uploaded | Sequence[PathArg | Uploaded]
"""Files and folders (`-f`), `-` for stdin, or manifests uploaded to the server."""


def as_list(paths: Paths) -> list[str | Uploaded]:
    """One path or several, as a list of strings (uploads as they are)."""
    if isinstance(paths, (str, os.PathLike, Uploaded)):
        paths = [paths]
    return [p if isinstance(p, Uploaded) else os.fspath(p) for p in paths]


class ManifestService:
    def __init__(self, workspace: Workspace, console: Console | None = None) -> None:
        self.workspace = workspace
        self.console = console or Console()

    def validate(self, paths: Paths, *, use_cache: bool = True) -> ValidationResult:
        """Check manifests (YAML, schema, references); never raises for problems in them.

        Args:
            paths: files, folders, or "-" for stdin.
            use_cache: reuse results of unchanged files (see `afctl.manifests.cache`).

        The console is told the progress (files done, files in all) while checking.

        Raises:
            UsageError: a path does not exist or holds no manifests.
        """
        from afctl._version import __version__
        from afctl.manifests.cache import ValidationCache, default_cache_path
        from afctl.manifests.schema import schema_hash
        from afctl.manifests.validate import validate_paths

        cache = None
        if use_cache:
            from afctl.plugin_fingerprint import plugins_fingerprint

            stamp = f"{__version__}:{schema_hash()}:{plugins_fingerprint()}"
            cache = ValidationCache(default_cache_path(self.workspace.found), stamp)
        console = self.console

        def progress(done: int, total: int) -> None:
            console.progress(done, total, "Validating")

        result, _ = validate_paths(as_list(paths), cache, progress)
        return result

    def load(self, paths: Paths) -> ManifestSet:
        """Load and validate manifests.

        Raises:
            ManifestError: any manifest is invalid; `diagnostics` lists every problem.
            UsageError: a path does not exist or holds no manifests.
        """
        from afctl.manifests.model import ManifestSet
        from afctl.manifests.validate import validate_paths

        result, manifests = validate_paths(as_list(paths), None)
        if not result.valid:
            raise ManifestError(result.diagnostics, sources=result.sources)
        return ManifestSet(manifests)

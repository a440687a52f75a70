"""`Context`: the one façade the CLI, the Python API and tests drive.

A command parses its flags, calls one method here, and renders what comes back. Nothing here
prints; problems come back as values (diagnostics) or as `afctl.errors` exceptions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from afctl.errors import ManifestError
from afctl.workspace import find_workspace

if TYPE_CHECKING:
    from afctl.manifests.model import ManifestSet
    from afctl.manifests.validate import Progress, ValidationResult

PathArg = str | os.PathLike[str]


def _as_list(paths: PathArg | Sequence[PathArg]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        return [os.fspath(paths)]
    return [os.fspath(p) for p in paths]


class Context:
    """afctl's engine for one workspace and environment.

    Args:
        workspace: the repository root or `.afctl/` folder; found by walking up when omitted.
        env: the environment name (`AFCTL_ENV`, default `default`).
    """

    def __init__(self, workspace: PathArg | None = None, env: str | None = None) -> None:
        self.workspace: Path | None = find_workspace(workspace)
        self.env = env or os.environ.get("AFCTL_ENV") or "default"

    def validate(
        self,
        paths: PathArg | Sequence[PathArg],
        *,
        use_cache: bool = True,
        progress: Progress | None = None,
    ) -> ValidationResult:
        """Check manifests (YAML, schema, references); never raises for problems in them.

        Args:
            paths: files, folders, or "-" for stdin.
            use_cache: reuse results of unchanged files (see `afctl.manifests.cache`).
            progress: called with (files done, files in all) while checking.

        Raises:
            UsageError: a path does not exist or holds no manifests.
        """
        from afctl._version import __version__
        from afctl.manifests.cache import ValidationCache, default_cache_path
        from afctl.manifests.schema import schema_hash
        from afctl.manifests.validate import validate_paths

        cache = None
        if use_cache:
            stamp = f"{__version__}:{schema_hash()}"
            cache = ValidationCache(default_cache_path(self.workspace), stamp)
        result, _ = validate_paths(_as_list(paths), cache, progress)
        return result

    def load(self, paths: PathArg | Sequence[PathArg]) -> ManifestSet:
        """Load and validate manifests.

        Raises:
            ManifestError: any manifest is invalid; `diagnostics` lists every problem.
            UsageError: a path does not exist or holds no manifests.
        """
        from afctl.manifests.model import ManifestSet
        from afctl.manifests.validate import validate_paths

        result, manifests = validate_paths(_as_list(paths), None)
        if not result.valid:
            raise ManifestError(result.diagnostics)
        return ManifestSet(manifests)


def validate(paths: PathArg | Sequence[PathArg], *, use_cache: bool = False) -> ValidationResult:
    """Validate manifests with a default Context (no cache unless asked)."""
    return Context().validate(paths, use_cache=use_cache)


def load(paths: PathArg | Sequence[PathArg]) -> ManifestSet:
    """Load and validate manifests with a default Context; raises ManifestError if invalid."""
    return Context().load(paths)

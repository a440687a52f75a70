"""Finding the workspace: the `.afctl/` folder of a repository, found by walking up like git."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from afctl.storage.settings import StorageSettings
    from afctl.workspace_config import Settings

WORKSPACE_DIR = ".afctl"
ENV_VAR = "AFCTL_WORKSPACE"


def workspace_dir(root: Path) -> Path:
    """The `.afctl/` folder for a repository root (or the folder itself if named `.afctl`)."""
    return root if root.name == WORKSPACE_DIR else root / WORKSPACE_DIR


def find_workspace(
    override: str | os.PathLike[str] | None = None, start: Path | None = None
) -> Path | None:
    """The workspace folder in use, or None when there is none.

    `override` (the `--workspace` flag) wins, then `AFCTL_WORKSPACE`, then the nearest
    `.afctl/` folder in the current directory or one of its parents.
    """
    chosen = override if override is not None else os.environ.get(ENV_VAR) or None
    if chosen is not None:
        return workspace_dir(Path(chosen).resolve())
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / WORKSPACE_DIR
        if candidate.is_dir():
            return candidate
    return None


GITIGNORE = "# afctl's workspace: state, logs, caches (kept out of git, like .terraform/)\n*\n"


def ensure_workspace(folder: Path) -> Path:
    """Create the workspace folder if needed, with a `.gitignore` that keeps it out of git
    (databases and logs do not belong in a repository; `afctl.lock` does, beside it)."""
    folder.mkdir(parents=True, exist_ok=True)
    ignore = folder / ".gitignore"
    if folder.name == WORKSPACE_DIR and not ignore.exists():
        try:
            ignore.write_text(GITIGNORE, "utf-8")
        except OSError:
            pass  # a read-only workspace still works
    return folder


_ENV_NAME = re.compile(r"[a-z0-9]([-_a-z0-9]{0,61}[a-z0-9])?")


class Workspace:
    """Where one context works: a repository root, its `.afctl/` folder, and an environment.

    Every service of a context shares one of these. The folder is created only when something
    is written (`dir`); until then `found` is None when no workspace exists yet.
    """

    def __init__(self, override: str | os.PathLike[str] | None = None, env: str | None = None):
        from afctl.errors import UsageError

        self.found: Path | None = find_workspace(override)
        self.env = env or os.environ.get("AFCTL_ENV") or "default"
        if not _ENV_NAME.fullmatch(self.env):
            raise UsageError(
                f"--env {self.env}: not a valid environment name",
                hint="use lowercase letters, digits, '-' and '_' (e.g. prod, staging-eu)",
            )

    @functools.cached_property
    def settings(self) -> Settings:
        """Where runs and records go, by their environment variables' names: the workspace's
        `.afctl/config.yaml`, with the environment over it (`afctl.workspace_config`).

        Raises:
            UsageError: the file is unreadable or names something it should not.
        """
        from afctl.workspace_config import settings

        return settings(self.found)

    @functools.cached_property
    def storage(self) -> StorageSettings:
        """Which databases hold the state and the prompt log (`afctl.storage.settings`)."""
        from afctl.storage.settings import StorageSettings

        return StorageSettings.from_env(self.settings)

    @property
    def root(self) -> Path:
        """The repository root: the folder holding `.afctl/` (the current one if none yet)."""
        return self.found.parent if self.found is not None else Path.cwd()

    @property
    def dir(self) -> Path:
        """The workspace folder, `.afctl` in the current directory when none was found."""
        if self.found is None:
            self.found = Path.cwd() / WORKSPACE_DIR
        return self.found

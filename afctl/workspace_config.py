"""A workspace's own settings: `.afctl/config.yaml`, each one what an environment variable
would say (the variable, when set, wins):

    database_url: postgresql://afctl@db.internal:5432/afctl    # AFCTL_DATABASE_URL
    state_database_url: ...                                   # AFCTL_STATE_DATABASE_URL
    log_database_url: ...                                     # AFCTL_LOG_DATABASE_URL
    broker_url: redis://redis.internal:6379/0                 # AFCTL_BROKER_URL
    queue: afctl                                              # AFCTL_QUEUE
    executor: celery                                          # AFCTL_EXECUTOR

The folder is kept out of git; still, leave passwords out of it: PostgreSQL's client reads
PGPASSWORD and ~/.pgpass, and the environment variables take whole URLs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from afctl.errors import UsageError

CONFIG_FILE = "config.yaml"
SETTINGS = {
    "database_url": "AFCTL_DATABASE_URL",
    "state_database_url": "AFCTL_STATE_DATABASE_URL",
    "log_database_url": "AFCTL_LOG_DATABASE_URL",
    "broker_url": "AFCTL_BROKER_URL",
    "queue": "AFCTL_QUEUE",
    "executor": "AFCTL_EXECUTOR",
}
"""The settings the file may hold, and the environment variable each stands for."""


class Settings(dict[str, str]):
    """Settings by their environment variables' names, with where each came from."""

    def __init__(self) -> None:
        super().__init__()
        self.where: dict[str, str] = {}
        """Variable -> `FILE:LINE key` for a setting the file gave (named in errors)."""

    def source(self, variable: str) -> str:
        """How to name where `variable`'s value came from: the file and line, or itself."""
        return self.where.get(variable, variable)


def read_config(folder: Path) -> Settings:
    """The settings of `folder/config.yaml` under their environment variables' names (none
    without the file).

    Raises:
        UsageError: the file is not YAML, not a mapping, names an unknown setting or holds a
            value that is not text (each naming the file and line).
    """
    path = folder / CONFIG_FILE
    found = Settings()
    try:
        text = path.read_text("utf-8")
    except FileNotFoundError:
        return found
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        data = YAML(typ="rt", pure=True).load(text)  # round-trip: plain data, with lines
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise UsageError(f"{where}: not YAML ({getattr(exc, 'problem', None) or exc})") from None
    if data is None:
        return found
    if not isinstance(data, Mapping):
        raise UsageError(f"{path}: give a mapping of settings",
                         hint=f"settings: {', '.join(SETTINGS)}")  # fmt: skip
    for key, value in data.items():
        line = data.lc.key(key)[0] + 1 if hasattr(data, "lc") else 0
        if key not in SETTINGS:
            raise UsageError(f"{path}:{line}: unknown setting {str(key)[:80]!r}",
                             hint=f"settings: {', '.join(SETTINGS)}")  # fmt: skip
        if not isinstance(value, str) or not value.strip():
            raise UsageError(f"{path}:{line}: {key} takes text")
        found[SETTINGS[key]] = value.strip()
        found.where[SETTINGS[key]] = f"{path}:{line} {key}"
    return found


def settings(folder: Path | None) -> Settings:
    """The workspace's settings: its file's, with the environment's variables over them."""
    merged = read_config(folder) if folder is not None else Settings()
    for variable, value in os.environ.items():  # all of afctl's (the broker's timeouts too)
        if variable.startswith("AFCTL_") and value:
            merged[variable] = value
            merged.where.pop(variable, None)
    return merged

"""Which database holds the workspace's state and which its prompt log.

    AFCTL_DATABASE_URL=postgresql://user:password@host:5432/afctl   both, in one database
    AFCTL_STATE_DATABASE_URL=...                                     state only (over the above)
    AFCTL_LOG_DATABASE_URL=...                                       the prompt log only

Unset: the SQLite files in `.afctl/` (state.db, logs.db), as always. A URL is shown only with
its password replaced by `***`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from afctl.errors import UsageError

DATABASE_URL = "AFCTL_DATABASE_URL"
STATE_URL = "AFCTL_STATE_DATABASE_URL"
LOG_URL = "AFCTL_LOG_DATABASE_URL"
_SCHEMES = ("postgresql", "postgres")
STATE_SCHEMA = "afctl_state"
LOG_SCHEMA = "afctl_log"
"""The PostgreSQL schemas of the state's and the prompt log's tables (one database can hold
both)."""
_PASSWORD = re.compile(r"(?<=://)([^:/@]*):([^@]*)@")


def redact_url(url: str) -> str:
    """`url` with its password (if any) replaced by `***`."""
    return _PASSWORD.sub(lambda m: f"{m.group(1)}:***@", url)


def one_line(exc: BaseException, url: str) -> str:
    """A driver's complaint about `url` on one line, with no password in it."""
    reason = " ".join(str(exc).split()) or type(exc).__name__
    return redact_url(reason).replace(url, redact_url(url))


@dataclass(frozen=True)
class DatabaseUrl:
    url: str
    variable: str
    """The environment variable it came from (named in errors)."""

    @property
    def shown(self) -> str:
        return redact_url(self.url)

    @classmethod
    def parse(cls, url: str, variable: str) -> DatabaseUrl:
        """Raises UsageError: not a PostgreSQL URL."""
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in _SCHEMES:
            raise UsageError(
                f"{variable}={redact_url(url)}: not a PostgreSQL URL",
                hint="use postgresql://USER:PASSWORD@HOST:5432/DATABASE, or unset it for the "
                "SQLite files in .afctl/",
            )
        return cls(url, variable)


def source_of(environ: Mapping[str, str], variable: str) -> str:
    """How errors name where `variable`'s value came from: the workspace config's file and
    line when it came from there (`afctl.workspace_config.Settings`), else the variable."""
    source = getattr(environ, "source", None)
    return str(source(variable)) if source is not None else variable


@dataclass(frozen=True)
class StorageSettings:
    state: DatabaseUrl | None = None
    """None: `.afctl/state.db`."""
    log: DatabaseUrl | None = None
    """None: `.afctl/logs.db`."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> StorageSettings:
        """Raises UsageError: a variable holds something other than a PostgreSQL URL."""
        environ = os.environ if environ is None else environ

        def chosen(own: str) -> DatabaseUrl | None:
            for variable in (own, DATABASE_URL):
                value = (environ.get(variable) or "").strip()
                if value:
                    return DatabaseUrl.parse(value, source_of(environ, variable))
            return None

        return cls(chosen(STATE_URL), chosen(LOG_URL))

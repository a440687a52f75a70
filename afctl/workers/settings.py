"""Where runs are queued: `AFCTL_BROKER_URL=redis://HOST:6379/0` (unset: in-process).

AFCTL_BROKER_URL            the Redis broker
AFCTL_QUEUE                 the queue jobs go to and workers take from (default `afctl`)
AFCTL_BROKER_VISIBILITY_S   how long a job a worker took may go unacknowledged before
                            Redis hands it to another worker (default 3600); a worker
                            killed with kill -9 has its jobs redelivered after this
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from afctl.errors import UsageError
from afctl.storage.settings import redact_url, source_of

BROKER_URL = "AFCTL_BROKER_URL"
QUEUE = "AFCTL_QUEUE"
VISIBILITY = "AFCTL_BROKER_VISIBILITY_S"
DEFAULT_QUEUE = "afctl"
HEARTBEAT_S = float(os.environ.get("AFCTL_WORKER_HEARTBEAT_S") or 5.0)
"""How often a worker records that it still runs its runs (AFCTL_WORKER_HEARTBEAT_S); a run
whose heartbeat is older than STALE_S is taken to have lost its worker."""
STALE_S = 3 * HEARTBEAT_S


@dataclass(frozen=True)
class BrokerSettings:
    url: str
    queue: str = DEFAULT_QUEUE
    visibility_s: float = 3600.0

    @property
    def shown(self) -> str:
        return redact_url(self.url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BrokerSettings | None:
        """None without AFCTL_BROKER_URL.

        Raises:
            UsageError: not a Redis URL, or a visibility timeout that is not a number.
        """
        environ = os.environ if environ is None else environ
        url = (environ.get(BROKER_URL) or "").strip()
        if not url:
            return None
        if url.split("://", 1)[0] not in ("redis", "rediss"):
            raise UsageError(
                f"{source_of(environ, BROKER_URL)}={redact_url(url)}: not a Redis URL",
                hint="use redis://HOST:6379/0, or unset it to run in-process",
            )
        try:
            visibility = float(environ.get(VISIBILITY) or 3600)
        except ValueError:
            raise UsageError(f"{VISIBILITY}: not a number of seconds") from None
        return cls(url, (environ.get(QUEUE) or DEFAULT_QUEUE).strip(), visibility)


EXECUTOR = "AFCTL_EXECUTOR"
EXECUTORS = ("local", "celery")


def executor(chosen: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Where work runs: `chosen` (a flag), else AFCTL_EXECUTOR or the workspace's `executor`
    setting (in `environ`), else `local`.

    Raises:
        UsageError: it is neither local nor celery.
    """
    environ = os.environ if environ is None else environ
    found = chosen or (environ.get(EXECUTOR) or "").strip() or "local"
    if found not in EXECUTORS:
        raise UsageError(f"executor {found!r}: use local or celery",
                         hint="set it with --executor, AFCTL_EXECUTOR or `executor:` in "
                              ".afctl/config.yaml")  # fmt: skip
    return found

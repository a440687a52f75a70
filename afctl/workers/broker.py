"""What afctl keeps in the broker (Redis) besides Celery's queue: its depth, the jobs workers
have taken, requests to stop runs; and checking the broker can be used at all."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from afctl.workers.settings import BrokerSettings


@contextlib.contextmanager
def redis_client(settings: BrokerSettings) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(settings.url, socket_timeout=5, socket_connect_timeout=5)
    try:
        yield client
    finally:
        client.close()


def queue_depth(settings: BrokerSettings) -> int:
    """Jobs waiting in the queue (Redis keeps a queue as a list under its name)."""
    with redis_client(settings) as client:
        return int(client.llen(settings.queue))


def cancel_key(run_id: str) -> str:
    return f"afctl:cancel:{run_id}"


def request_cancel(settings: BrokerSettings, run_id: str) -> None:
    """Ask the worker carrying out run `run_id` (or the one that takes its job) to stop it;
    the request is kept a day."""
    with redis_client(settings) as client:
        client.set(cancel_key(run_id), "1", ex=86_400)


def cancel_requested(settings: BrokerSettings, run_ids: list[str]) -> set[str]:
    """Those of `run_ids` whose runs were asked to stop."""
    if not run_ids:
        return set()
    with redis_client(settings) as client:
        found = client.mget([cancel_key(run_id) for run_id in run_ids])
    return {run_id for run_id, value in zip(run_ids, found, strict=True) if value}


def taken_or_queued(settings: BrokerSettings) -> set[str] | None:
    """The ids of the jobs workers have taken and not acknowledged; None while jobs wait in
    the queue (kombu keeps taken jobs in the `unacked` hash, as [message, exchange, key])."""
    import json

    with redis_client(settings) as client:
        if client.llen(settings.queue):
            return None
        held = set()
        for value in client.hvals("unacked"):
            try:
                held.add(str(json.loads(value)[0]["headers"]["id"]))
            except (ValueError, KeyError, IndexError, TypeError):
                continue
        return held


def usable_broker(needed_by: str, environ: Mapping[str, str] | None = None) -> BrokerSettings:
    """The configured broker, once it answers.

    Raises:
        UsageError: no broker is configured (`needed_by` says what wanted one).
        BrokerUnavailable: it cannot be used (one line, its password hidden).
    """
    import redis

    from afctl.errors import BrokerUnavailable, UsageError
    from afctl.storage.settings import one_line

    settings = BrokerSettings.from_env(environ)
    if settings is None:
        raise UsageError(f"no broker configured: {needed_by} needs a broker",
                         hint="set AFCTL_BROKER_URL=redis://HOST:6379/0")  # fmt: skip
    try:
        with redis_client(settings) as client:
            client.ping()
    except redis.RedisError as exc:
        raise BrokerUnavailable(
            f"cannot use the broker {settings.shown} (AFCTL_BROKER_URL): "
            f"{one_line(exc, settings.url)}",
            hint="check that Redis runs there and the URL's password and database number",
        ) from None
    return settings


def claim_run(settings: BrokerSettings, run_id: str, worker: str) -> bool:
    """Claim starting run `run_id` (a `for_each` item's, which two workers may start at once);
    False when another claimed it first. A claim lasts a minute: by then the run is logged."""
    with redis_client(settings) as client:
        return bool(client.set(f"afctl:claim:{run_id}", worker, nx=True, ex=60))

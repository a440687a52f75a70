"""The Celery app both sides share, and running a worker.

Delivery: a job is acknowledged only once it is done (`task_acks_late`), and a job whose
worker was lost goes back to the queue (`task_reject_on_worker_lost`; with Redis, a job taken
but not acknowledged is handed to another worker after the visibility timeout). Each worker
takes one job per free thread (`worker_prefetch_multiplier = 1`), so jobs spread over workers.
Results are not kept by Celery: runs and their outcomes are in the prompt log.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from afctl.workers.settings import STALE_S, BrokerSettings

if TYPE_CHECKING:
    from celery import Celery

    from afctl.workers.worker import WorkerRuntime

TASK = "afctl.run"


def make_app(settings: BrokerSettings) -> Celery:
    from celery import Celery

    app = Celery("afctl", broker=settings.url, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=settings.queue,
        # a job taken but not acknowledged within the visibility timeout (its worker was lost)
        # goes back to the queue at the next sweep for such jobs: every few seconds, not
        # kombu's default of about 100
        broker_transport_options={
            "visibility_timeout": settings.visibility_s,
            "unacked_restore_interval": max(1.0, min(10.0, settings.visibility_s / 2)),
            "unacked_restore_throttle": 1,
        },
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=3,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


def register(app: Celery, runtime: WorkerRuntime) -> None:
    """The task that carries jobs out on `runtime` (in the worker process only)."""
    from celery.exceptions import Reject

    from afctl.workers.jobs import Job
    from afctl.workers.worker import BUSY, HANDED_BACK

    @app.task(name=TASK, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def run(self: Any, job: dict[str, Any]) -> None:
        outcome = runtime.carry_out(Job.from_dict(job))
        if outcome == BUSY:  # delivered twice: look again once the other worker's beat is due
            raise self.retry(countdown=STALE_S)
        if outcome == HANDED_BACK:
            raise Reject("the worker is shutting down", requeue=True)


def worker_name() -> str:
    return f"afctl@{socket.gethostname()}"


@contextlib.contextmanager
def _redis(settings: BrokerSettings) -> Iterator[Any]:
    import redis

    client = redis.Redis.from_url(settings.url, socket_timeout=5, socket_connect_timeout=5)
    try:
        yield client
    finally:
        client.close()


def queue_depth(settings: BrokerSettings) -> int:
    """Jobs waiting in the queue (Redis keeps a queue as a list under its name)."""
    with _redis(settings) as client:
        return int(client.llen(settings.queue))


def taken_or_queued(settings: BrokerSettings) -> set[str] | None:
    """The ids of the jobs workers have taken and not acknowledged; None while jobs wait in
    the queue (kombu keeps taken jobs in the `unacked` hash, as [message, exchange, key])."""
    import json

    with _redis(settings) as client:
        if client.llen(settings.queue):
            return None
        held = set()
        for value in client.hvals("unacked"):
            try:
                held.add(str(json.loads(value)[0]["headers"]["id"]))
            except (ValueError, KeyError, IndexError, TypeError):
                continue
        return held


def usable_broker(needed_by: str) -> BrokerSettings:
    """The configured broker, once it answers.

    Raises:
        UsageError: no broker is configured (`needed_by` says what wanted one).
        BrokerUnavailable: it cannot be used (one line, its password hidden).
    """
    import redis

    from afctl.errors import BrokerUnavailable, UsageError
    from afctl.storage.settings import one_line

    settings = BrokerSettings.from_env()
    if settings is None:
        raise UsageError(f"no broker configured: {needed_by} needs a broker",
                         hint="set AFCTL_BROKER_URL=redis://HOST:6379/0")  # fmt: skip
    try:
        with _redis(settings) as client:
            client.ping()
    except redis.RedisError as exc:
        raise BrokerUnavailable(
            f"cannot use the broker {settings.shown} (AFCTL_BROKER_URL): "
            f"{one_line(exc, settings.url)}",
            hint="check that Redis runs there and the URL's password and database number",
        ) from None
    return settings

"""The Celery app both sides share (the worker side registers its task in `serve`).

Delivery: a job is acknowledged only once it is done (`task_acks_late`), and a job whose
worker was lost goes back to the queue (`task_reject_on_worker_lost`; with Redis, a job taken
but not acknowledged is handed to another worker after the visibility timeout). Each worker
takes one job per free thread (`worker_prefetch_multiplier = 1`), so jobs spread over workers.
Results are not kept by Celery: runs and their outcomes are in the prompt log.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from afctl.workers.settings import BrokerSettings

if TYPE_CHECKING:
    from celery import Celery


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


def worker_name() -> str:
    return f"afctl@{socket.gethostname()}"

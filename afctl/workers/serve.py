"""Running `afctl worker`: check the broker and the prompt log, start the runtime, hand it to
a Celery worker (threads pool), and shut down as SIGTERM asks (see `worker.WorkerRuntime`)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from afctl.runtime.service import RunService
    from afctl.workers.worker import WorkerRuntime


def run_worker(
    runs: RunService,
    *,
    concurrency: int,
    queues: Sequence[str],
    name: str | None,
    grace_s: float,
    on_ready: Callable[[str, str, str], None],
) -> int:
    """Take jobs until told to stop; Celery's exit code. `on_ready(name, queues, broker)` is
    told once the worker is set up (the broker's URL with its password hidden).

    Raises:
        UsageError: no broker is configured.
        BrokerUnavailable: it cannot be reached.
        DatabaseUnavailable: the prompt log cannot be opened (unreachable, not migrated).
    """
    from celery.signals import worker_shutting_down

    from afctl.workers.app import make_app, worker_name
    from afctl.workers.broker import usable_broker
    from afctl.workers.worker import WorkerRuntime

    settings = usable_broker("afctl worker", runs.workspace.settings)
    runs.logs.log  # noqa: B018 -- the log is reachable and migrated before any job is taken
    name = name or worker_name()
    runtime = WorkerRuntime(runs, name, settings)
    app = make_app(settings)
    register(app, runtime)

    def shutting_down(**_: object) -> None:
        threading.Thread(target=runtime.hand_back, args=(grace_s,), daemon=True).start()

    worker_shutting_down.connect(shutting_down, weak=False)
    taken = ",".join(queues or (settings.queue,))
    on_ready(name, taken, settings.shown)
    # containers run workers as root; Celery's warning about it says nothing afctl can act on
    warnings.filterwarnings("ignore", message="You're running the worker with superuser")
    try:
        code = app.worker_main(["--quiet", "worker", "--pool=threads",
                                f"--concurrency={concurrency}", "-Q", taken, "-n", name,
                                "--without-gossip", "--without-mingle",
                                "--loglevel=WARNING"])  # fmt: skip
    finally:
        runtime.close()
    return int(code or 0)


def register(app: Celery, runtime: WorkerRuntime) -> None:
    """The task that carries jobs out on `runtime` (in the worker process only)."""
    from celery.exceptions import Reject

    from afctl.workers.app import TASK
    from afctl.workers.jobs import Job
    from afctl.workers.settings import STALE_S
    from afctl.workers.worker import BUSY, HANDED_BACK

    @app.task(name=TASK, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def run(self: Any, job: dict[str, Any]) -> None:
        outcome = runtime.carry_out(Job.from_dict(job))
        if outcome == BUSY:  # delivered twice: look again once the other worker's beat is due
            raise self.retry(countdown=STALE_S)
        if outcome == HANDED_BACK:
            raise Reject("the worker is shutting down", requeue=True)

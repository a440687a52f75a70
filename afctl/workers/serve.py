"""Running `afctl worker`: check the broker and the prompt log, start the runtime, hand it to
a Celery worker (threads pool), and shut down as SIGTERM asks (see `worker.WorkerRuntime`)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from afctl.runtime.service import RunService


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

    from afctl.workers.app import make_app, register, usable_broker, worker_name
    from afctl.workers.worker import WorkerRuntime

    settings = usable_broker("afctl worker")
    runs.logs.log  # noqa: B018 -- the log is reachable and migrated before any job is taken
    name = name or worker_name()
    runtime = WorkerRuntime(runs, name)
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

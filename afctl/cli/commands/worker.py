"""`afctl worker`: carry out queued runs (agent runs, workflow runs, eval cases)."""

from __future__ import annotations

import click

from afctl.cli.params import Duration, cli_context, env_option, workspace_option
from afctl.errors import EXIT_ERROR, EXIT_OK


@click.command()
@click.option("--concurrency", "-c", type=click.IntRange(1, 1000), default=20, show_default=True,
              help="Runs in flight at once (they share one event loop; agent runs mostly "
                   "wait on the network, so tens are fine).")  # fmt: skip
@click.option(
    "--queue",
    "-Q",
    "queues",
    multiple=True,
    metavar="NAME",
    help="Take jobs from this queue (repeatable; default AFCTL_QUEUE, or afctl).",
)
@click.option("--name", "-n", help="The worker's name in the log (default afctl@HOST).")
@click.option("--grace", type=Duration(), default="30s", show_default=True,
              help="On SIGTERM: time for runs in flight to finish before they are handed "
                   "back to the queue (interrupted, to be resumed by another worker).")  # fmt: skip
@workspace_option
@env_option
def worker(
    concurrency: int,
    queues: tuple[str, ...],
    name: str | None,
    grace: float,
    workspace: str | None,
    env: str,
) -> int:
    """Carry out queued runs: agent runs, workflow runs, eval cases.

    Needs AFCTL_BROKER_URL (Redis) and a database the queueing side shares (AFCTL_DATABASE_URL
    for workers on other machines). Manifests come from the prompt log (the revision each
    job names), not from this checkout; python tools are imported from --workspace's
    repository root (or an installed package). A job is acknowledged when its run is done; a
    worker killed mid-run has its jobs redelivered, and the runs resume from the log.
    """
    import warnings

    from celery.signals import worker_shutting_down

    from afctl.errors import UsageError
    from afctl.workers.app import check_broker, make_app, register, worker_name
    from afctl.workers.settings import BrokerSettings
    from afctl.workers.worker import WorkerRuntime

    settings = BrokerSettings.from_env()
    if settings is None:
        raise UsageError("no broker configured",
                         hint="set AFCTL_BROKER_URL=redis://HOST:6379/0")  # fmt: skip
    check_broker(settings)
    context = cli_context(workspace, env)
    context.db_status()  # the database is reachable and migrated before any job is taken
    name = name or worker_name()
    runtime = WorkerRuntime(context.services.runs, name)
    app = make_app(settings)
    register(app, runtime)

    def shutting_down(**_: object) -> None:
        import threading

        threading.Thread(target=runtime.hand_back, args=(grace,), daemon=True).start()

    worker_shutting_down.connect(shutting_down, weak=False)
    taken = ",".join(queues or (settings.queue,))
    click.echo(f"afctl worker {name}: {concurrency} runs at once from {taken} on "
               f"{settings.shown}", err=True)  # fmt: skip
    # containers run workers as root; Celery's warning about it says nothing afctl can act on
    warnings.filterwarnings("ignore", message="You're running the worker with superuser")
    try:
        code = app.worker_main(["--quiet", "worker", "--pool=threads",
                                f"--concurrency={concurrency}", "-Q", taken, "-n", name,
                                "--without-gossip", "--without-mingle",
                                "--loglevel=WARNING"])  # fmt: skip
    finally:
        runtime.close()
    click.echo(f"afctl worker {name} stopped", err=True)
    return EXIT_OK if not code else EXIT_ERROR

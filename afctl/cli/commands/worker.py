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
    from afctl.workers.serve import run_worker

    named = [name or ""]

    def ready(worker: str, queues: str, broker: str) -> None:
        named[0] = worker
        click.echo(f"afctl worker {worker}: {concurrency} runs at once from {queues} on "
                   f"{broker}", err=True)  # fmt: skip

    context = cli_context(workspace, env)
    code = run_worker(context.services.runs, concurrency=concurrency, queues=queues, name=name,
                      grace_s=grace, on_ready=ready)  # fmt: skip
    click.echo(f"afctl worker {named[0]} stopped", err=True)
    return EXIT_OK if not code else EXIT_ERROR

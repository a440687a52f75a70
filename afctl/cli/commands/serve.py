"""`afctl serve` and `afctl triggers`: run, and list, the applied workflows' triggers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, pairs_option, state_options
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="The address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8787, show_default=True,
    help="The port (0: any free one).",
)  # fmt: skip
@pairs_option("--var", "variables", help="A variable.")
@state_options
def serve(host: str, port: int, variables: dict[str, str], context: Context) -> int:
    """Run the applied workflows' triggers: webhooks, cron, watches.

    Webhooks POST to their path; signed ones need X-Afctl-Timestamp and X-Afctl-Signature
    (sha256=HMAC of "timestamp.body"; 5 minutes old at most, each accepted once), or GitHub's
    X-Hub-Signature-256 with X-GitHub-Delivery. GET /healthz and /metrics (Prometheus; off
    this machine only with AFCTL_METRICS_TOKEN as a bearer token) are served too. SIGTERM or
    Ctrl-C stops: running workflows get 10 s to finish.
    """
    context.serve(host, port, variables=variables)
    return EXIT_OK


@click.command()
@output_option("text", "json")
@state_options
def triggers(output: str, context: Context) -> int:
    """List the applied workflows' triggers and next fire times.

    Schedules show their next occurrence in UTC and in their own time zone.
    """

    found = context.triggers()
    rows = [
        {
            "workflow": trigger.workflow,
            "type": trigger.type,
            "trigger": trigger.describe(),
            "next": None if when is None else when.isoformat(),
        }
        for trigger, when in found
    ]
    from afctl.cli.render import show_listing

    def table() -> list[list[str]]:
        return [["WORKFLOW", "TYPE", "TRIGGER", "NEXT (UTC)"]] + [
            [str(r["workflow"]), str(r["type"]), str(r["trigger"]), str(r["next"] or "-")]
            for r in rows
        ]

    empty = f"no workflow applied in environment {context.env} declares triggers"
    show_listing(output, rows, empty, table)
    return EXIT_OK

"""`afctl runs`: the prompt log, a run at a time."""

from __future__ import annotations

import click

from afctl.cli.params import cli_context, output_option, server_option, workspace_option
from afctl.errors import EXIT_OK
from afctl.promptlog.store import STATUSES


@click.group(invoke_without_command=True)
@click.option("--agent", help="Only runs of this agent.")
@click.option("--status", type=click.Choice(STATUSES), help="Only runs with this status.")
@click.option("-n", "--limit", type=click.IntRange(1), default=20, show_default=True)
@output_option("table", "json", default="table")
@workspace_option
@server_option
@click.pass_context
def runs(
    ctx: click.Context,
    agent: str | None,
    status: str | None,
    limit: int,
    output: str,
    workspace: str | None,
    server: str | None,
) -> int:
    """List recent runs from the prompt log, newest first."""
    context = cli_context(workspace, server=server)  # `runs show` uses it too
    if ctx.invoked_subcommand is not None:
        return EXIT_OK
    from afctl.cli.render import console, print_json
    from afctl.cli.render.runs import run_rows
    from afctl.cli.render.state import print_columns

    found = context.runs(agent=agent, status=status, limit=limit)
    if output == "json":
        print_json([r.to_dict() for r in found])
    elif found:
        print_columns(console(), run_rows(found))
    else:
        console().print("No runs yet.", markup=False)
    return EXIT_OK


@runs.command()
@click.argument("run_id", metavar="RUN")
@output_option("text", "json")
def show(run_id: str, output: str) -> int:
    """Show a run's transcript: messages, tool calls, tokens, cost and latency per step.

    RUN is a run id, a unique prefix of one, or `last` (the latest run).
    """
    from afctl.cli.render import console, print_json
    from afctl.cli.render.runs import render_transcript

    transcript = cli_context().transcript(run_id)
    if output == "json":
        print_json(transcript.to_dict())
    else:
        render_transcript(console(), transcript.run, transcript.payload, transcript.events)
    return EXIT_OK

"""`afctl approve`: let a run that waits for approval go on."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, remote_state_options

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option("--deny", is_flag=True, help="Refuse the calls instead; the model is told so.")
@output_option("text", "json")
@remote_state_options
def approve(run_id: str, deny: bool, output: str, context: Context) -> int:
    """Approve or deny the tool calls a paused run waits for.

    RUN is a run id, a unique prefix of one, or `last`. The run continues as the same run,
    with the agent revision it started with; later calls that need approval are asked on a
    terminal.
    """
    from afctl.cli.commands.run import report

    return report(context.approve(run_id, deny=deny), output, context)

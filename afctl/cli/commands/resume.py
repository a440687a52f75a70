"""`afctl resume`: go on with an interrupted workflow run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, state_options

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@click.argument("run_id", metavar="RUN")
@output_option("text", "json")
@state_options
def resume(run_id: str, output: str, context: Context) -> int:
    """Go on with a workflow run that a crash interrupted.

    The steps it finished are not run again; it goes on as the same run, on the revision it
    started with. `afctl runs --status interrupted` lists candidates.
    """
    from afctl.cli.render.runs import workflow_report

    result = context.resume(run_id)
    return workflow_report(result, output)

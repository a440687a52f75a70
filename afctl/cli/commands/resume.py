"""`afctl resume`: go on with an interrupted agent or workflow run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, remote_state_options

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@click.argument("run_id", metavar="RUN")
@output_option("text", "json")
@remote_state_options
def resume(run_id: str, output: str, context: Context) -> int:
    """Go on with an agent or workflow run that a crash interrupted.

    It goes on as the same run, on the revision it started with. A workflow's finished steps
    are not run again. An agent run goes on from its model's last recorded answer: tool calls
    whose results were recorded are not made again; one that was in flight when the run
    stopped is made again. `afctl runs --status interrupted` lists candidates.
    """
    from afctl.cli.commands.run import report
    from afctl.cli.render.runs import workflow_report
    from afctl.runtime.run_types import RunResult

    result = context.resume(run_id)
    if isinstance(result, RunResult):
        return report(result, output, context)
    return workflow_report(result, output)

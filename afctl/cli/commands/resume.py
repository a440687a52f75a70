"""`afctl resume`: go on with an interrupted workflow run."""

from __future__ import annotations

import click

from afctl.cli.params import output_option, state_options


@click.command()
@click.argument("run_id", metavar="RUN")
@output_option("text", "json")
@state_options
def resume(run_id: str, output: str, workspace: str | None, env: str) -> int:
    """Go on with a workflow run that a crash interrupted.

    The steps it finished are not run again; it goes on as the same run, on the revision it
    started with. `afctl runs --status interrupted` lists candidates.
    """
    from afctl.cli.render_runs import workflow_report
    from afctl.context import Context

    result = Context(workspace=workspace, env=env).resume(run_id)
    return workflow_report(result, output)

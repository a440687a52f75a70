"""`afctl history` and `afctl rollback`: revisions of a resource."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import lock_timeout_option, output_option, state_options, yes_option
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@click.argument("target", metavar="KIND/NAME")
@output_option("table", "json", default="table")
@state_options
def history(target: str, output: str, context: Context) -> int:
    """List the revisions of a resource."""
    from afctl.cli.render import console, print_json
    from afctl.cli.render.state import print_columns, revision_rows
    from afctl.manifests.kinds import parse_ref

    kind, name = parse_ref(target)
    revisions = context.history(kind, name)
    if output == "json":
        print_json([r.to_dict() for r in revisions])
    else:
        print_columns(console(), revision_rows(revisions))
    return EXIT_OK


@click.command()
@click.argument("target", metavar="KIND/NAME")
@click.option("--to", "revision", type=int, required=True, help="The revision to go back to.")
@yes_option
@lock_timeout_option
@state_options
def rollback(target: str, revision: int, yes: bool, lock_timeout: float, context: Context) -> int:
    """Apply an earlier revision of a resource again."""
    from afctl.cli.commands.apply import command_line
    from afctl.cli.render import console
    from afctl.cli.render.state import render_outcome, render_plan
    from afctl.manifests.kinds import parse_ref

    kind, name = parse_ref(target)
    outcome = context.rollback(
        kind,
        name,
        revision,
        lock_timeout=lock_timeout,
        command=command_line(),
    )
    if not outcome.plan.has_changes:
        render_plan(console(), outcome.plan, context.workspace)
    render_outcome(console(), outcome)
    return EXIT_OK

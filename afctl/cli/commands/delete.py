"""`afctl delete`: remove resources from the applied state (history is kept)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import filename_option, lock_timeout_option, state_options, yes_option
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@click.argument("targets", nargs=-1, metavar="[KIND/NAME]...")
@filename_option(required=False, help="Delete the resources these manifests define.")
@yes_option
@lock_timeout_option
@state_options
def delete(
    targets: tuple[str, ...],
    paths: tuple[str, ...],
    yes: bool,
    lock_timeout: float,
    context: Context,
) -> int:
    """Delete applied resources by KIND/NAME or by manifest (-f).

    Goes through a plan like apply: protected resources are refused, and the plan is shown
    before anything is removed.
    """
    from afctl.cli.commands.apply import command_line
    from afctl.cli.render import console
    from afctl.cli.render.state import render_outcome
    from afctl.manifests.kinds import parse_ref

    refs = [parse_ref(target) for target in targets]
    outcome = context.delete(
        refs,
        list(paths),
        lock_timeout=lock_timeout,
        command=command_line(),
    )
    render_outcome(console(), outcome)
    return EXIT_OK

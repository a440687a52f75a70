"""`afctl apply`: make the applied state match the manifests, or apply a saved plan."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from afctl.cli.params import (
    filename_option,
    lock_timeout_option,
    prune_option,
    remote_state_options,
    yes_option,
)
from afctl.errors import EXIT_OK, UsageError

if TYPE_CHECKING:
    from afctl.context import Context


def command_line() -> str:
    """The command as typed, recorded with the lock and the apply."""
    context = click.get_current_context(silent=True)
    argv = (context.find_root().obj or {}).get("argv", []) if context else []
    return " ".join(["afctl", *argv])[:500]


@click.command()
@click.argument("plan_file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@filename_option(required=False)
@prune_option
@yes_option
@lock_timeout_option
@remote_state_options
def apply(
    plan_file: Path | None,
    paths: tuple[str, ...],
    prune: bool,
    yes: bool,
    lock_timeout: float,
    context: Context,
) -> int:
    """Apply manifests or a saved plan to the workspace state.

    Plans under the workspace lock, shows the plan, asks (unless --yes), and writes everything
    in one transaction. A saved plan is refused if the state changed since it was made.
    """
    from afctl.cli.render import console
    from afctl.cli.render.state import render_outcome

    if bool(plan_file) == bool(paths):
        raise UsageError(
            "give either -f PATH or a saved plan file",
            hint="afctl apply -f .   or   afctl apply plan.json",
        )
    if plan_file is not None:
        if prune:
            raise UsageError("--prune is part of a saved plan already", hint="plan with --prune")
        saved = context.read_plan(plan_file)
        # a saved plan is the approval (as in terraform): applied without asking, once it is
        # known not to be stale
        outcome = context.apply_saved_plan(saved, lock_timeout=lock_timeout,
                                           command=command_line())  # fmt: skip
    else:
        outcome = context.apply(
            list(paths),
            prune=prune,
            lock_timeout=lock_timeout,
            command=command_line(),
        )
    out = console()
    if not outcome.plan.has_changes:
        from afctl.cli.render.state import render_plan

        render_plan(out, outcome.plan, context.workspace)
    render_outcome(out, outcome)
    return EXIT_OK

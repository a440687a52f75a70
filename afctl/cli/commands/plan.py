"""`afctl plan`: what an apply would change, written to nothing (or saved with --out)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from afctl.cli.params import filename_option, output_option, prune_option, remote_state_options
from afctl.errors import EXIT_CHANGES, EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@filename_option()
@prune_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save the plan as JSON, to apply exactly it later with `afctl apply FILE`.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 2 when the plan has changes (0 when it has none).",
)
@output_option("text", "json")
@remote_state_options
def plan(
    paths: tuple[str, ...],
    prune: bool,
    out: Path | None,
    detailed_exitcode: bool,
    output: str,
    context: Context,
) -> int:
    """Show what an apply would create, update and delete.

    Compares the files with the applied state of the environment; writes nothing. Deletes are
    planned only with --prune, and only for resources these same files applied earlier.
    """
    from afctl.cli.render import check_report_paths

    check_report_paths({"--out": None if out is None else str(out)})
    result = context.plan(list(paths), prune=prune)
    if out is not None:
        context.save_plan(result, out)
    if output == "json":
        from afctl.cli.render import print_json

        print_json(result.to_dict())
    else:
        from afctl.cli.render import console
        from afctl.cli.render.state import render_plan

        terminal = console()
        render_plan(terminal, result, context.workspace)
        if out is not None:
            terminal.print(
                f"Saved the plan to {out}; apply it with: afctl apply {out}", markup=False
            )
    return EXIT_CHANGES if detailed_exitcode and result.has_changes else EXIT_OK

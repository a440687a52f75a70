"""`afctl force-unlock`: clear a workspace lock left behind by a dead process."""

from __future__ import annotations

import click

from afctl.cli.params import cli_context, workspace_option
from afctl.errors import EXIT_OK


@click.command("force-unlock")
@click.argument("lock_id")
@workspace_option
def force_unlock(lock_id: str, workspace: str | None) -> int:
    """Remove a workspace lock left by an apply that died.

    Only do this when no apply is running: the lock is what keeps two applies apart.
    """
    held = cli_context(workspace).force_unlock(lock_id)
    click.echo(f"Removed {held.describe()}")
    return EXIT_OK

"""`afctl db`: where the state and the prompt log are kept, and their migrations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, state_options
from afctl.errors import EXIT_CHANGES, EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context
    from afctl.dbops.service import StoreStatus


@click.group()
def db() -> None:
    """Where state and logs are kept, and their migrations.

    The state and the prompt log are the SQLite files in .afctl/ unless AFCTL_DATABASE_URL (both),
    AFCTL_STATE_DATABASE_URL or AFCTL_LOG_DATABASE_URL names a PostgreSQL database.
    """


def _render(statuses: list[StoreStatus], output: str) -> None:
    if output == "json":
        from afctl.cli.render import print_json

        print_json([s.to_dict() for s in statuses])
        return
    for status in statuses:
        if status.newer:
            state = f"written by a newer afctl ({status.newer[-1]})"
        elif status.pending:
            state = f"{len(status.pending)} pending: {', '.join(status.pending)}"
        else:
            state = "current"
        ran = f"; ran {', '.join(status.ran)}" if status.ran else ""
        click.echo(f"{status.store:6} {status.backend:10} {status.where}  "
                   f"{len(status.applied)} applied, {state}{ran}")  # fmt: skip


@db.command("status")
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 2 when a store has migrations pending.")  # fmt: skip
@output_option("text", "json")
@state_options
def status(detailed_exitcode: bool, output: str, context: Context) -> int:
    """Show where each store is kept, and its applied and pending migrations."""
    statuses = context.db_status()
    _render(statuses, output)
    if detailed_exitcode and not all(s.current for s in statuses):
        return EXIT_CHANGES
    return EXIT_OK


@db.command("migrate")
@output_option("text", "json")
@state_options
def migrate(output: str, context: Context) -> int:
    """Run the pending migrations of the state and the prompt log.

    The SQLite files migrate themselves when opened; a PostgreSQL database is migrated only
    by this command, so that a team's shared database changes when someone means it to.
    """
    _render(context.db_migrate(), output)
    return EXIT_OK


@db.command("copy")
@click.option("--to", "to", required=True, metavar="URL",
              help="The PostgreSQL database: postgresql://USER:PASSWORD@HOST:5432/DB.")  # fmt: skip
@output_option("text", "json")
@state_options
def copy(to: str, output: str, context: Context) -> int:
    """Copy this workspace's SQLite files into a PostgreSQL database, and verify the copy.

    Migrates the target, copies every table of the state and the prompt log (rows it has
    already, by key, are kept: copying twice adds nothing), then checks each table's row
    count and content hash. Point AFCTL_DATABASE_URL at it afterwards.
    """
    copies = context.db_copy(to)
    if output == "json":
        from afctl.cli.render import print_json

        print_json([c.to_dict() for c in copies])
        return EXIT_OK
    for copied in copies:
        click.echo(f"{copied.store}: {copied.source} -> {copied.target}")
        for table in copied.tables:
            click.echo(f"  {table.table:18} {table.source_rows:8} rows, {table.copied:8} copied,"
                       f" sha256 {table.digest[:12]} verified")  # fmt: skip
    if not copies:
        click.echo("nothing to copy: this workspace has no state or prompt log yet")
    return EXIT_OK

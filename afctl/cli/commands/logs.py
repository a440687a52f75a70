"""`afctl logs`: the prompt log's size, and keeping it in bounds."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, state_options
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


def megabytes(size: int) -> str:
    """A size in MB, or in KB below one MB."""
    if size < 1_048_576:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1_048_576:.1f} MB"


@click.group()
def logs() -> None:
    """Sizes, pruning and vacuuming of the prompt log."""


@logs.command("stats")
@output_option("table", "json", default="table")
@state_options
def logs_stats(output: str, context: Context) -> int:
    """Show the prompt log's size per table."""

    total, sizes = context.log_sizes()
    if output == "json":
        from afctl.cli.render import print_json

        print_json({"file_bytes": total, "tables": {t: {"bytes": b, "rows": r}
                                                    for t, (b, r) in sizes.items()}})  # fmt: skip
        return EXIT_OK
    from afctl.cli.render import console
    from afctl.cli.render.state import print_columns

    rows = [["TABLE", "ROWS", "SIZE"]]
    rows += [
        [t, str(r), megabytes(b)] for t, (b, r) in sorted(sizes.items(), key=lambda i: -i[1][0])
    ]
    print_columns(console(), rows)
    click.echo(f"file: {megabytes(total)}")
    return EXIT_OK


@logs.command("prune")
@click.option("--older-than", "age", required=True, metavar="AGE", help="30d, 12h, 2w, ...")
@click.option("--keep-failed", is_flag=True, help="Keep failed, blocked and interrupted runs.")
@state_options
def prune(age: str, keep_failed: bool, context: Context) -> int:
    """Delete runs older than AGE with their events and payloads."""

    count, before, size = context.prune_logs(age, keep_failed=keep_failed)
    click.echo(
        f"pruned {count} runs started before {before}; the file is {megabytes(size)} "
        "(afctl logs vacuum gives the space back)"
    )
    return EXIT_OK


@logs.command("vacuum")
@state_options
def vacuum(context: Context) -> int:
    """Rewrite the prompt log compactly, giving freed space back."""

    before, after = context.vacuum_logs()
    click.echo(f"vacuumed: {megabytes(before)} → {megabytes(after)}")
    return EXIT_OK

"""`afctl stats`, `afctl query` and `afctl export`: the prompt log through DuckDB."""

from __future__ import annotations

import csv
import sys
from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, state_options
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.analytics.logs import Table
    from afctl.context import Context


def show(table: Table, output: str) -> None:
    if output == "json":
        from afctl.cli.render import print_json

        print_json(table.records())
    elif output == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(table.columns)
        writer.writerows(table.rows)
    elif not table.rows:
        click.echo("No rows.")
    else:
        from afctl.cli.render import console
        from afctl.cli.render.state import print_columns

        shown = [[c.upper() for c in table.columns]]
        shown += [["-" if v is None else str(v) for v in row] for row in table.rows]
        print_columns(console(), shown)


@click.command()
@click.option(
    "--by", default="", metavar="DIMS", help="agent,model,day,status,env,target,label:KEY"
)
@click.option("--since", metavar="AGE", help="Only runs started since: 30m, 12h, 7d, 2w or a date.")
@click.option("--include-replays", is_flag=True, help="Count the spend of live replays too.")
@output_option("table", "json", "csv", default="table")
@state_options
def stats(by: str, since: str | None, include_replays: bool, output: str, context: Context) -> int:
    """Runs, success, latency, tokens and cost from the prompt log."""

    dimensions = [d.strip() for d in by.split(",") if d.strip()]
    table = context.stats(dimensions, since=since, include_replays=include_replays)
    show(table, output)
    return EXIT_OK


@click.command()
@click.argument("sql")
@output_option("table", "json", "csv", default="table")
@state_options
def query(sql: str, output: str, context: Context) -> int:
    """Run SQL over the prompt log's views.

    The views: runs, events, model_calls, tool_calls and evals (read-only).
    """

    show(context.query(sql), output)
    return EXIT_OK


@click.command()
@click.argument("what", type=click.Choice(["runs", "events", "model_calls", "tool_calls"]))
@click.option(
    "--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]), default="parquet",
    show_default=True, help="The file format.",
)  # fmt: skip
@click.option("--since", metavar="AGE", help="Only rows since: 30m, 12h, 7d, 2w or a date.")
@click.option("--out", "target", metavar="FILE", help="Where to write (default: WHAT.FORMAT).")
@click.option(
    "--content", is_flag=True,
    help="Also the prompts and answers: inputs, outputs and payloads (redacted, as logged).",
)  # fmt: skip
@state_options
def export(
    what: str,
    fmt: str,
    since: str | None,
    target: str | None,
    content: bool,
    context: Context,
) -> int:
    """Export a view of the prompt log to parquet, csv or jsonl.

    Metrics by default; --content adds the prompts and answers (redacted, as logged).
    """

    path = target or f"{what}.{fmt}"
    rows = context.export(what, path, fmt, since=since, content=content)
    click.echo(f"{rows} rows written to {path}")
    return EXIT_OK

"""`afctl usage`: what installed blueprints' agents used, and what usage-priced ones cost."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, state_options
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@click.option("--by", default="blueprint", show_default=True, metavar="DIMS",
              help="Group by blueprint, agent and/or model (comma-separated).")  # fmt: skip
@click.option("--since", metavar="AGE|DATE", help="Only runs since then (30d, 2026-11-01).")
@output_option("text", "json")
@state_options
def usage(by: str, since: str | None, output: str, context: Context) -> int:
    """Tokens, cost and amounts due of installed blueprints' runs.

    From the prompt log, by the agents' afctl/blueprint label; a blueprint priced by usage
    shows the amount due at its unit price (per run, per 1k tokens, or per USD of model cost).
    """

    from afctl.cli.render import show_listing

    rows = context.usage([d.strip() for d in by.split(",") if d.strip()], since)

    def table() -> list[list[str]]:
        dims = [d for d in rows[0] if d in ("blueprint", "agent", "model")]
        lines = [[d.upper() for d in dims] + ["RUNS", "TOKENS", "COST_USD", "PRICING",
                                              "AMOUNT_DUE"]]  # fmt: skip
        for row in rows:
            pricing = row["pricing"]
            priced = pricing.get("model", "-") + (
                f" {pricing['price']}/{pricing.get('unit', 'run')}" if "price" in pricing else ""
            )
            due = "-" if row["amount_due"] is None else f"{row['amount_due']:.4f} {row['currency']}"
            cost = "-" if row["cost_usd"] is None else f"{row['cost_usd']:.6f}"
            tokens = str(row["input_tokens"] + row["output_tokens"])
            lines.append([str(row[d]) for d in dims] + [str(row["runs"]), tokens, cost, priced,
                                                        due])  # fmt: skip
        return lines

    show_listing(output, rows, "no runs of installed blueprints yet", table)
    return EXIT_OK

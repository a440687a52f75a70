"""`afctl tune`: run a suite over a space of models, parameters and instructions, rank the
candidates and print the winner as a patch of the agent's manifest (or write it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, state_options
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.command("tune")
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option(
    "--param",
    "params",
    multiple=True,
    required=True,
    metavar="NAME=V1,V2|NAME=@FILE",
    help="An axis of the space: model, instructions or a model parameter.",
)
@click.option(
    "--strategy",
    type=click.Choice(["grid", "random", "halving"]),
    default="grid",
    show_default=True,
    help="Every candidate, a random sample, or successive halving.",
)
@click.option("--samples", type=click.IntRange(min=1), help="Candidates --strategy random tries.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --strategy random.")
@click.option(
    "--budget-usd", type=click.FloatRange(min=0), help="Start no candidate past this spend."
)
@click.option("--write", is_flag=True, help="Apply the winner to the agent's manifest file.")
@output_option("text", "json")
@state_options
def tune(
    paths: tuple[str, ...],
    params: tuple[str, ...],
    strategy: str,
    samples: int | None,
    seed: int,
    budget_usd: float | None,
    write: bool,
    output: str,
    context: Context,
) -> int:
    """Search models, params and instructions for the best agent.

    PATH holds EvalSuite manifests and, for --write, the file defining the agent. Candidates
    rank by pass rate, then cost, then latency; every evaluation is stored in the prompt log.
    """

    reports = context.tune(
        list(paths),
        list(params),
        strategy=strategy,
        samples=samples,
        seed=seed,
        budget_usd=budget_usd,
        write=write,
    )
    data = [r.to_dict() for r in reports]
    if output == "json":
        from afctl.cli.render import print_json

        print_json(data)
        return EXIT_OK
    from afctl.cli.render.eval import render_tuning

    render_tuning(data)
    return EXIT_OK

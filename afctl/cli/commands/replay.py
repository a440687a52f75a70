"""`afctl replay`: run a recorded run again, offline, and say whether it reproduces."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from afctl.cli.params import filename_option, output_option, pairs_option, state_options
from afctl.errors import EXIT_CHANGES, EXIT_CHECKS_FAILED, EXIT_ERROR, EXIT_OK, UsageError

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@click.argument("run_id", metavar="RUN")
@click.option(
    "--revision",
    type=click.Choice(["recorded", "current"]),
    default="recorded",
    show_default=True,
    help="The agent revision the run used, or the current one (-f, or the applied state).",
)
@filename_option(required=False, help="With --revision current: take the agent from these files.")
@click.option("--live-tools", is_flag=True, help="Call the tools for real instead of the log.")
@click.option("--live", is_flag=True, help="Run the input again for real, as a new run.")
@click.option("--model", help="With --live: another model (provider/model or a Model).")
@pairs_option("--set", "settings", help="With --live: a model parameter.")
@output_option("text", "json")
@state_options
def replay(
    run_id: str,
    revision: str,
    paths: tuple[str, ...],
    live_tools: bool,
    live: bool,
    model: str | None,
    settings: dict[str, str],
    output: str,
    context: Context,
) -> int:
    """Replay a run offline, serving every step from the prompt log.

    Every model response (and tool result, unless --live-tools) comes from the log: no
    network, no side effects. The engine must ask for each step as it was recorded; the first
    step it asks for differently is reported, and the exit code is 5. RUN is a run id, a
    unique prefix of one, or `last`.
    """

    if live:
        result, diff = context.replay_live(
            run_id,
            model=model,
            params=parse_settings(settings),
            revision=revision,
            paths=list(paths) or None,
        )
        if output == "json":
            from afctl.cli.render import print_json

            print_json({"run": result.to_dict(), "diff": diff.to_dict()})
        else:
            from afctl.cli.render.replay import show_diff
            from afctl.cli.render.runs import run_summary

            click.echo(f"live replay of {diff.a}: {run_summary(result)}")
            show_diff(diff)
        return EXIT_OK if result.ok else EXIT_ERROR
    if model or settings:
        raise UsageError("--model and --set need --live (an offline replay serves the log)")
    report = context.replay(
        run_id, revision=revision, paths=list(paths) or None, live_tools=live_tools
    )
    if output == "json":
        from afctl.cli.render import print_json

        print_json(report.to_dict())
    else:
        from afctl.cli.render.replay import show_report

        show_report(report)
    return EXIT_OK if report.reproduced else EXIT_CHECKS_FAILED


def parse_settings(pairs: dict[str, str]) -> dict[str, Any]:
    """`--set temperature=0.2` as {"temperature": 0.2} (values read as JSON when they are)."""
    values: dict[str, Any] = {}
    for name, raw in pairs.items():
        try:
            values[name] = json.loads(raw)
        except ValueError:
            values[name] = raw
    return values


@click.command("diff-runs")
@click.argument("a", metavar="RUN_A")
@click.argument("b", metavar="RUN_B")
@output_option("text", "json")
@state_options
def diff_runs(a: str, b: str, output: str, context: Context) -> int:
    """Compare two runs step by step (output, tools, cost, latency)."""

    diff = context.diff_runs(a, b)
    if output == "json":
        from afctl.cli.render import print_json

        print_json(diff.to_dict())
    else:
        from afctl.cli.render.replay import show_diff

        show_diff(diff)
    return EXIT_OK if diff.identical else EXIT_CHANGES  # diff's convention: 2 when different

"""`afctl replay`: run a recorded run again, offline, and say whether it reproduces."""

from __future__ import annotations

import json

import click

from afctl.cli.params import filename_option, output_option, state_options
from afctl.errors import EXIT_CHECKS_FAILED, EXIT_OK


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
@output_option("text", "json")
@state_options
def replay(
    run_id: str,
    revision: str,
    paths: tuple[str, ...],
    live_tools: bool,
    output: str,
    workspace: str | None,
    env: str,
) -> int:
    """Replay a run offline, serving every step from the prompt log.

    Every model response (and tool result, unless --live-tools) comes from the log: no
    network, no side effects. The engine must ask for each step as it was recorded; the first
    step it asks for differently is reported, and the exit code is 5.
    """
    from afctl.context import Context

    report = Context(workspace=workspace, env=env).replay(
        run_id, revision=revision, paths=list(paths) or None, live_tools=live_tools
    )
    if output == "json":
        from afctl.cli.render import print_json

        print_json(report.to_dict())
    elif report.divergence is None:
        click.echo(
            f"run {report.run_id}: reproduced ({report.steps} steps, "
            f"engine {report.engine_ms:.1f} ms)"
        )
    else:
        d = report.divergence
        click.echo(f"run {report.run_id}: diverged at step {d.step} (turn {d.turn}): {d.what}")
        click.echo(f"  recorded: {_shown(d.expected)}")
        click.echo(f"  engine:   {_shown(d.actual)}")
    return EXIT_OK if report.reproduced else EXIT_CHECKS_FAILED


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "⏎ ")
    return text if len(text) <= 300 else text[:299] + "…"

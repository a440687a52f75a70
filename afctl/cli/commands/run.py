"""`afctl run`: run an agent on one input."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING

import click

from afctl.cli.params import filename_option, output_option, pairs_option, remote_state_options
from afctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, UsageError

if TYPE_CHECKING:
    from afctl.context import Context
    from afctl.runtime.agent import RunResult


_TARGET = re.compile(r"[A-Za-z]+/[A-Za-z0-9_.-]+")


def _split(args: tuple[str, ...], from_files: bool) -> tuple[str | None, str | None]:
    """(target, input) from the positional arguments.

    With -f, a single argument is the input unless it looks like `agent/NAME`.
    """
    if len(args) > 2:
        raise UsageError("afctl run takes TARGET and INPUT", hint='afctl run agent/support "hi"')
    if len(args) == 2:
        return args[0], args[1]
    if len(args) == 1:
        if from_files and not _TARGET.fullmatch(args[0]):
            return None, args[0]
        return args[0], None
    return None, None


@click.command()
@click.argument("args", nargs=-1, metavar="[agent/NAME|workflow/NAME] [INPUT]")
@filename_option(required=False, help="Run from these manifests instead of the applied state.")
@pairs_option("--var", "variables", help="A template variable.")
@pairs_option("--input", "inputs", help="A workflow input.")
@click.option(
    "--input-file",
    type=click.Path(exists=True, dir_okay=False),
    help="A workflow's inputs as a JSON or YAML object (--input values go over them).",
)
@click.option("--session", help="Continue (or start) the conversation with this id.")
@click.option("--model", help="Use this model instead of the agent's (provider/model or a Model).")
@click.option(
    "--stream/--no-stream", default=None, help="Print tokens as they come (default: on a terminal)."
)
@output_option("text", "json")
@remote_state_options
def run(
    args: tuple[str, ...],
    paths: tuple[str, ...],
    variables: dict[str, str],
    inputs: dict[str, str],
    input_file: str | None,
    session: str | None,
    model: str | None,
    stream: bool | None,
    output: str,
    context: Context,
) -> int:
    """Run an agent on one input, or a workflow on its inputs.

    The agent or workflow comes from the applied state of the environment, or from -f PATH.
    INPUT `-` (or no INPUT, off a terminal) reads standard input; workflows take --input
    NAME=VALUE and --input-file. The run id goes to stderr; every step is in the prompt log
    (afctl runs show RUN).
    """

    target, text = _split(args, bool(paths))
    if target is not None and target.startswith("workflow/"):
        if text is not None:
            raise UsageError(
                "a workflow takes --input NAME=VALUE, not INPUT",
                hint=f"afctl run {target} --input text=...",
            )
        from afctl.cli.render.runs import workflow_report

        finished = context.run_workflow(target, inputs, paths=list(paths) or None,
                                      variables=variables, typed=not inputs,
                                      input_file=input_file)  # fmt: skip
        return workflow_report(finished, output)
    if inputs or input_file:
        raise UsageError(
            "--input and --input-file are for workflows", hint="afctl run workflow/NAME --input k=v"
        )
    if text is None or text == "-":
        if text is None and sys.stdin.isatty():
            shown = target or "agent/NAME"
            raise UsageError("give the input", hint=f'afctl run {shown} "your question"')
        text = sys.stdin.read()
    result = context.run(
        target, text, paths=list(paths) or None, variables=variables, session=session, model=model
    )
    return report(result, output, context)


def report(result: RunResult, output: str, context: Context) -> int:
    """Print a run's answer (unless it was streamed) and its summary; the exit code."""
    printed = getattr(context.console, "printed", [])
    if output == "json":
        from afctl.cli.render import print_json

        print_json(result.to_dict())
    elif result.output is not None and not printed:
        click.echo(result.output, nl=not result.output.endswith("\n"))
    elif printed and not "".join(printed).endswith("\n"):
        click.echo()
    from afctl.cli.render.runs import run_summary

    click.echo(run_summary(result), err=True)
    if result.status == "awaiting_approval":
        click.echo(f"approve with: afctl approve {result.run_id}   (or deny: --deny)", err=True)
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    if result.status == "blocked":  # a guardrail's policy said no
        return EXIT_INVALID
    return EXIT_OK if result.ok else EXIT_ERROR

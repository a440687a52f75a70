"""`afctl run`: run an agent on one input."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

import click

from afctl.cli.params import filename_option, output_option, state_options
from afctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, EXIT_OK, UsageError

if TYPE_CHECKING:
    from afctl.runtime.agent import Approver, RunResult


def parse_vars(pairs: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise UsageError(f"--var {pair}: write NAME=VALUE")
        values[name.strip()] = value
    return values


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
@click.option(
    "--var", "variables", multiple=True, metavar="NAME=VALUE", help="A template variable."
)
@click.option("--input", "inputs", multiple=True, metavar="NAME=VALUE", help="A workflow input.")
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
@state_options
def run(
    args: tuple[str, ...],
    paths: tuple[str, ...],
    variables: tuple[str, ...],
    inputs: tuple[str, ...],
    input_file: str | None,
    session: str | None,
    model: str | None,
    stream: bool | None,
    output: str,
    workspace: str | None,
    env: str,
) -> int:
    """Run an agent on one input, or a workflow on its inputs.

    The agent or workflow comes from the applied state of the environment, or from -f PATH.
    INPUT `-` (or no INPUT, off a terminal) reads standard input; workflows take --input
    NAME=VALUE and --input-file. The run id goes to stderr; every step is in the prompt log
    (afctl runs show RUN).
    """
    from afctl.context import Context

    target, text = _split(args, bool(paths))
    context = Context(workspace=workspace, env=env)
    if target is not None and target.startswith("workflow/"):
        if text is not None:
            raise UsageError(
                "a workflow takes --input NAME=VALUE, not INPUT",
                hint=f"afctl run {target} --input text=...",
            )
        values, typed = read_inputs(inputs, input_file)
        from afctl.cli.render_runs import workflow_report

        return workflow_report(
            context.run_workflow(target, values, paths=list(paths) or None,
                                 variables=parse_vars(variables), typed=typed),
            output,
        )  # fmt: skip
    if inputs or input_file:
        raise UsageError(
            "--input and --input-file are for workflows", hint="afctl run workflow/NAME --input k=v"
        )
    if text is None or text == "-":
        if text is None and sys.stdin.isatty():
            shown = target or "agent/NAME"
            raise UsageError("give the input", hint=f'afctl run {shown} "your question"')
        text = sys.stdin.read()
    streaming = stream if stream is not None else (output == "text" and sys.stdout.isatty())
    on_text = TerminalStream()
    printed = on_text.printed

    result = context.run(
        target,
        text,
        paths=list(paths) or None,
        variables=parse_vars(variables),
        session=session,
        model=model,
        on_text=on_text if streaming and output == "text" else None,
        approver=terminal_approver(),
    )
    return report(result, output, printed)


class TerminalStream:
    """Streamed text on stdout. When a retried model call answers differently, `restart`
    erases what was shown on a terminal (elsewhere it starts a new line)."""

    def __init__(self) -> None:
        self.printed: list[str] = []
        self._since_restart: list[str] = []

    def __call__(self, piece: str) -> None:
        self.printed.append(piece)
        self._since_restart.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()

    def restart(self) -> None:
        shown = "".join(self._since_restart)
        self._since_restart = []
        if not shown:
            return
        if sys.stdout.isatty():
            import shutil

            width = max(shutil.get_terminal_size().columns, 1)
            rows = sum(max(1, -(-len(line) // width)) for line in shown.split("\n"))
            up = f"\033[{rows - 1}A" if rows > 1 else ""
            sys.stdout.write(f"\r{up}\033[J")  # back to where the answer began, clear below
        else:
            sys.stdout.write("\n")
        sys.stdout.flush()


def read_inputs(pairs: tuple[str, ...], input_file: str | None) -> tuple[dict[str, Any], bool]:
    """A workflow's inputs from --input-file and --input (these win), and whether they are all
    typed already (a file's values are; `--input` values are text)."""
    values: dict[str, Any] = {}
    if input_file is not None:
        from pathlib import Path

        from afctl.manifests.yaml_loader import load_bytes

        loaded = load_bytes(Path(input_file).read_bytes(), input_file)
        documents = [d.data for d in loaded.documents]
        if (
            any(d.is_error for d in loaded.diagnostics)
            or len(documents) != 1
            or not isinstance(documents[0], dict)
        ):
            raise UsageError(f"--input-file {input_file}: give one JSON or YAML object of inputs")
        values.update(documents[0])
    for pair in pairs:
        name, equals, value = pair.partition("=")
        if not equals or not name.strip():
            raise UsageError(f"--input {pair}: write NAME=VALUE")
        values[name.strip()] = value
    return values, not pairs


def terminal_approver() -> Approver | None:
    """On a terminal, ask before a tool call that needs approval; elsewhere, None (the run
    pauses and `afctl approve` decides later)."""
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        return None

    async def ask(name: str, arguments: dict[str, Any]) -> bool:
        import asyncio
        import json

        question = f"Allow {name}({json.dumps(arguments, ensure_ascii=False)})?"
        return await asyncio.to_thread(click.confirm, question, default=False, err=True)

    return ask


def report(result: RunResult, output: str, printed: list[str]) -> int:
    """Print a run's answer (unless it was streamed) and its summary; the exit code."""
    if output == "json":
        from afctl.cli.render import print_json

        print_json(result.to_dict())
    elif result.output is not None and not printed:
        click.echo(result.output, nl=not result.output.endswith("\n"))
    elif printed and not "".join(printed).endswith("\n"):
        click.echo()
    from afctl.cli.render_runs import run_summary

    click.echo(run_summary(result), err=True)
    if result.status == "awaiting_approval":
        click.echo(f"approve with: afctl approve {result.run_id}   (or deny: --deny)", err=True)
    if result.status == "interrupted":
        return EXIT_INTERRUPTED
    if result.status == "blocked":  # a guardrail's policy said no
        return EXIT_INVALID
    return EXIT_OK if result.ok else EXIT_ERROR

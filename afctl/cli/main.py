"""The `afctl` command: a root group whose commands are imported only when they run.

`afctl --help` lists every command from the table below without importing any of them, so it
starts fast; a test checks that each entry's help matches its command's own.

Exit codes are mapped in one place, `main()`: afctl's errors carry their code, click's usage
errors become 64 (never 2, which means "changes present"), Ctrl-C becomes 130, and anything
unexpected is an internal error (1) whose traceback only `--debug` shows.
"""

from __future__ import annotations

import importlib
import os
import sys

import click

from afctl._version import __version__
from afctl.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE

COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("afctl.cli.commands.init:init", "Scaffold a new afctl repository from a template."),
    "validate": (
        "afctl.cli.commands.validate:validate",
        "Check manifests: YAML, JSON Schema and references.",
    ),
    "explain": (
        "afctl.cli.commands.explain:explain",
        "Document a kind or field, like kubectl explain.",
    ),
    "schema": (
        "afctl.cli.commands.schema:schema",
        "Export the JSON Schemas of the manifest kinds.",
    ),
    "plan": (
        "afctl.cli.commands.plan:plan",
        "Show what an apply would create, update and delete.",
    ),
    "apply": (
        "afctl.cli.commands.apply:apply",
        "Apply manifests or a saved plan to the workspace state.",
    ),
    "diff": (
        "afctl.cli.commands.diff:diff",
        "Diff the applied state against manifests (unified).",
    ),
    "get": (
        "afctl.cli.commands.get:get",
        "List applied resources, or show one.",
    ),
    "describe": (
        "afctl.cli.commands.get:describe",
        "Show an applied resource with its source and history.",
    ),
    "delete": (
        "afctl.cli.commands.delete:delete",
        "Delete applied resources by KIND/NAME or by manifest (-f).",
    ),
    "history": (
        "afctl.cli.commands.history:history",
        "List the revisions of a resource.",
    ),
    "rollback": (
        "afctl.cli.commands.history:rollback",
        "Apply an earlier revision of a resource again.",
    ),
    "run": (
        "afctl.cli.commands.run:run",
        "Run an agent on one input, or a workflow on its inputs.",
    ),
    "serve": (
        "afctl.cli.commands.serve:serve",
        "Serve the API, OpenAI-compatible endpoints and triggers.",
    ),
    "triggers": (
        "afctl.cli.commands.serve:triggers",
        "List the applied workflows' triggers and next fire times.",
    ),
    "resume": (
        "afctl.cli.commands.resume:resume",
        "Go on with an agent or workflow run that a crash interrupted.",
    ),
    "approve": (
        "afctl.cli.commands.approve:approve",
        "Approve or deny the tool calls a paused run waits for.",
    ),
    "eval": (
        "afctl.cli.commands.eval:eval_command",
        "Run eval suites against their agents (exit 5 below thresholds).",
    ),
    "tune": (
        "afctl.cli.commands.tune:tune",
        "Search models, params and instructions for the best agent.",
    ),
    "replay": (
        "afctl.cli.commands.replay:replay",
        "Replay a run offline, serving every step from the prompt log.",
    ),
    "diff-runs": (
        "afctl.cli.commands.replay:diff_runs",
        "Compare two runs step by step (output, tools, cost, latency).",
    ),
    "runs": (
        "afctl.cli.commands.runs:runs",
        "List recent runs from the prompt log, newest first.",
    ),
    "knowledge": (
        "afctl.cli.commands.knowledge:knowledge",
        "Build and search the indexes of knowledge packs.",
    ),
    "stats": (
        "afctl.cli.commands.analytics:stats",
        "Runs, success, latency, tokens and cost from the prompt log.",
    ),
    "query": (
        "afctl.cli.commands.analytics:query",
        "Run SQL over the prompt log's views.",
    ),
    "export": (
        "afctl.cli.commands.analytics:export",
        "Export a view of the prompt log to parquet, csv or jsonl.",
    ),
    "logs": (
        "afctl.cli.commands.logs:logs",
        "Sizes, pruning and vacuuming of the prompt log.",
    ),
    "auth": (
        "afctl.cli.commands.auth:auth",
        "API keys of the server: create, list, revoke.",
    ),
    "worker": (
        "afctl.cli.commands.worker:worker",
        "Carry out queued runs: agent runs, workflow runs, eval cases.",
    ),
    "db": (
        "afctl.cli.commands.db:db",
        "Where state and logs are kept, and their migrations.",
    ),
    "mcp": (
        "afctl.cli.commands.mcp:mcp",
        "Offer the applied agents and workflows to MCP clients.",
    ),
    "audit": (
        "afctl.cli.commands.auth:audit",
        "List who changed what through the server, and how it ended.",
    ),
    "blueprint": (
        "afctl.cli.commands.blueprint:blueprint",
        "Lint, render, pack and install blueprints.",
    ),
    "usage": (
        "afctl.cli.commands.usage:usage",
        "Tokens, cost and amounts due of installed blueprints' runs.",
    ),
    "registry": (
        "afctl.cli.commands.registry:registry",
        "Name the blueprint registries this workspace uses.",
    ),
    "force-unlock": (
        "afctl.cli.commands.unlock:force_unlock",
        "Remove a workspace lock left by an apply that died.",
    ),
}
"""Command name -> ("module:attribute", one-line help)."""


def load_command(name: str) -> click.Command:
    target, _ = COMMANDS[name]
    module, _, attribute = target.partition(":")
    command = getattr(importlib.import_module(module), attribute)
    assert isinstance(command, click.Command)
    return command


class LazyGroup(click.Group):
    """A group that lists commands from `COMMANDS` and imports one only to run it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        return load_command(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and name not in COMMANDS and not name.startswith("-"):
            from afctl.diagnostics import did_you_mean

            hint = did_you_mean(name, COMMANDS)
            raise click.UsageError(f"unknown command {name!r}" + (f"; {hint}" if hint else ""), ctx)
        return super().resolve_command(ctx, args)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"afctl {__version__}")
        ctx.exit(EXIT_OK)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    invoke_without_command=True,
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Print the afctl version and exit.",
)
@click.option(
    "--debug",
    is_flag=True,
    envvar="AFCTL_DEBUG",
    help="Show tracebacks for internal errors.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    envvar="AFCTL_LOG_FORMAT",
    default="text",
    help="afctl's own log on stderr: text (warnings) or JSON lines with run ids.",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, log_format: str) -> None:
    """afctl: declarative, YAML-driven toolchain for AI agents.

    Write agents, tools, workflows, knowledge packs, eval suites and blueprints as YAML
    manifests; validate, plan and apply them; run, replay and evaluate agents.
    """
    ctx.ensure_object(dict)["debug"] = debug
    if log_format != "text" or ctx.invoked_subcommand in ("run", "runs", "approve", "serve"):
        from afctl.logs import configure

        # a server says what it does (each firing, each refusal); other commands only warn
        configure(log_format, "info" if ctx.invoked_subcommand == "serve" else None)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())
        ctx.exit(EXIT_OK)


def _debug_requested(args: list[str]) -> bool:
    return "--debug" in args or os.environ.get("AFCTL_DEBUG", "") not in ("", "0", "false")


def main(args: list[str] | None = None) -> int:
    """Run afctl and return its exit code (the console script exits with it)."""
    argv = list(sys.argv[1:] if args is None else args)
    from afctl.logs import started

    started.clear()  # the runs this command starts (what an interrupt names)
    try:
        code = cli.main(args=argv, prog_name="afctl", standalone_mode=False, obj={"argv": argv})
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.UsageError as exc:
        exc.show()
        code = EXIT_USAGE
    except click.ClickException as exc:
        exc.show()
        code = EXIT_USAGE if exc.exit_code == 2 else exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo(_interrupted(), err=True)
        code = EXIT_INTERRUPTED
    except Exception as exc:
        code = _report_exception(exc, _debug_requested(argv))
    return int(code or 0) if isinstance(code, int) else EXIT_OK


def _interrupted() -> str:
    """What an interrupt says: the run it stopped, and how to go on."""
    from afctl.logs import started

    if not started:
        return "Interrupted."
    run_id, kind = started[-1]
    what = "workflow run" if kind == "workflow" else "run"
    return (f"Interrupted: {what} {run_id} stopped; go on with it with: "
            f"afctl resume {run_id}")  # fmt: skip


def _report_exception(exc: BaseException, debug: bool) -> int:
    from afctl.errors import AfctlError

    if isinstance(exc, AfctlError):
        from afctl.cli.render import render_error

        render_error(exc)
        if debug:
            import traceback

            traceback.print_exception(exc)
        return exc.exit_code
    if isinstance(exc, BrokenPipeError):
        return EXIT_ERROR
    import sqlite3

    if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
        click.echo(
            f"error: a database of the workspace is damaged ({exc})\n"
            "hint: check .afctl/state.db and .afctl/logs.db with sqlite3 FILE 'PRAGMA "
            "integrity_check'; restore the damaged one from a backup",
            err=True,
        )
        return EXIT_ERROR
    import traceback

    if debug:
        traceback.print_exception(exc)
    else:
        from afctl.safety.secrets import redact_known

        click.echo(
            f"afctl: internal error: {type(exc).__name__}: {redact_known(str(exc))[:2000]}\n"
            "This is a bug in afctl. Run again with --debug for the traceback and report it.",
            err=True,
        )
    return EXIT_ERROR

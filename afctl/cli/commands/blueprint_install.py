"""`afctl blueprint install`, `upgrade`, `uninstall`, `list` and `trust`: a blueprint's
life in a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from afctl.cli.params import (
    lock_timeout_option,
    output_option,
    state_options,
    yes_option,
)
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.blueprints.install import Prepared
    from afctl.context import ApplyOutcome, Context


@click.command("install")
@click.argument("source", metavar="FILE.afbp|DIR|NAME[@RANGE]", required=False)
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="A parameter value.")
@click.option(
    "-f", "--values", "files", multiple=True, metavar="FILE", help="A YAML file of values."
)
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option("--trust", is_flag=True, help="Grant its local capabilities (python, commands...).")
@click.option(
    "--locked", is_flag=True,
    help="Exactly what afctl.lock pins (every blueprint, or NAME), digests verified.",
)  # fmt: skip
@yes_option
@lock_timeout_option
@state_options
def install(
    source: str | None,
    sets: tuple[str, ...],
    files: tuple[str, ...],
    dry_run: bool,
    trust: bool,
    locked: bool,
    yes: bool,
    lock_timeout: float,
    context: Context,
) -> int:
    """Install a blueprint: check, render, then plan and apply its resources.

    NAME[@RANGE] comes from the registries named in afctl.lock (which pins it); --locked
    installs exactly what afctl.lock pins. The archive is
    checked before anything is written and placed in the
    workspace's blueprint store; its resources are labelled afctl/blueprint=NAME. The plan shows
    the capabilities its blueprint.yaml declares; the local ones (python, commands, env,
    plugins) are granted only with --trust or `afctl blueprint trust NAME`.
    """
    from afctl.errors import UsageError

    options: dict[str, Any] = {"sets": list(sets), "files": list(files), "trust": trust,
                               "dry_run": dry_run, "lock_timeout": lock_timeout}  # fmt: skip
    if locked:
        for outcome, prepared in context.blueprint_install_locked(
            [source] if source else [], **options
        ):
            _show(outcome, prepared, context.workspace, dry_run)
        return EXIT_OK
    if source is None:
        raise UsageError("give the blueprint to install", hint="afctl blueprint install "
                         "FILE.afbp|DIR|NAME[@RANGE], or --locked")  # fmt: skip
    outcome, prepared = context.blueprint_install(source, **options)
    _show(outcome, prepared, context.workspace, dry_run)
    return EXIT_OK


def _show(outcome: ApplyOutcome, prepared: Prepared, workspace: Path | None, dry_run: bool) -> None:
    """An install's (or upgrade's) plan, the note on untrusted python tools, the outcome."""
    from afctl.cli.render import console
    from afctl.cli.render.state import render_outcome, render_plan

    out = console()
    if dry_run or not outcome.plan.has_changes:
        render_plan(out, outcome.plan, workspace)
    if not dry_run:
        render_outcome(out, outcome)


@click.command("uninstall")
@click.argument("name")
@yes_option
@lock_timeout_option
@state_options
def uninstall(name: str, yes: bool, lock_timeout: float, context: Context) -> int:
    """Delete exactly the resources a blueprint installed, and forget it."""
    from afctl.cli.render import console
    from afctl.cli.render.state import render_outcome

    outcome = context.blueprint_uninstall(name, lock_timeout=lock_timeout)
    render_outcome(console(), outcome)
    return EXIT_OK


@click.command("list")
@output_option("text", "json")
@state_options
def list_installed(output: str, context: Context) -> int:
    """List installed blueprints with their versions, values and trust."""
    import json

    from afctl.cli.render import show_listing

    installed = context.blueprint_list()

    def rows() -> list[list[str]]:
        return [["NAME", "VERSION", "ENV", "TRUSTED", "RESOURCES", "VALUES"]] + [
            [name, str(entry["version"]), str(entry.get("env")),
             "yes" if entry["trusted"] else "no", str(len(entry.get("resources") or [])),
             json.dumps(entry.get("values"), sort_keys=True)]
            for name, entry in installed.items()
        ]  # fmt: skip

    show_listing(output, installed, "no blueprint is installed", rows)
    return EXIT_OK


@click.command("trust")
@click.argument("name")
@state_options
def trust_command(name: str, context: Context) -> int:
    """Grant an installed blueprint its local capabilities (python, commands, env, plugins) for
    exactly the content installed now (read it first)."""

    trusted = context.blueprint_trust(name)
    granted = [text for _, text, _ in trusted.capabilities.describe()]
    click.echo(
        f"blueprint {name} {trusted.version} is trusted with its current content"
        + (": it may " + "; ".join(granted) if granted else " (it declares no capabilities)")
    )
    return EXIT_OK


@click.command("upgrade")
@click.argument("name")
@click.option("--to", "version", metavar="VERSION", help="The version (default: the newest).")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option("--trust", is_flag=True, help="Trust the new version (its capabilities).")
@yes_option
@lock_timeout_option
@state_options
def upgrade(
    name: str,
    version: str | None,
    dry_run: bool,
    trust: bool,
    yes: bool,
    lock_timeout: float,
    context: Context,
) -> int:
    """Move an installed blueprint to another version (its values kept), with a plan."""
    outcome, prepared = context.blueprint_upgrade(
        name, to=version, trust=trust, dry_run=dry_run, lock_timeout=lock_timeout
    )
    _show(outcome, prepared, context.workspace, dry_run)
    if not dry_run:
        click.echo(f"{name} is at {prepared.blueprint.version}")
    return EXIT_OK

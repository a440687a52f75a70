"""`afctl blueprint`: lint, render, pack, install, uninstall, list and trust blueprints."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from afctl.cli.params import (
    cli_context,
    lock_timeout_option,
    output_option,
    state_options,
    yes_option,
)
from afctl.errors import EXIT_INVALID, EXIT_OK

if TYPE_CHECKING:
    from afctl.blueprints.install import Prepared
    from afctl.context import ApplyOutcome, Context


@click.group()
def blueprint() -> None:
    """Lint, render, pack and install blueprints."""


@blueprint.command("create")
@click.argument("name")
@click.option("--dir", "parent", default=".", type=click.Path(file_okay=False),
              help="Where to make its folder.")  # fmt: skip
def create(name: str, parent: str) -> int:
    """Start a new blueprint: a folder that lints clean, with an eval suite that passes."""

    folder = cli_context().blueprint_create(name, parent)
    click.echo(f"created blueprint {name} in {folder}; next: afctl blueprint lint {folder}")
    return EXIT_OK


@blueprint.command("lint")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option(
    "--strict", is_flag=True, help="Warnings (undocumented parameters, no evals) fail too."
)
@output_option("text", "json")
def lint(folder: str, strict: bool, output: str) -> int:
    """Check a blueprint: schema, rendering with defaults, the rendered manifests, declared
    capabilities (exit 3 on errors); undocumented parameters and missing evals are warnings
    (errors with --strict)."""
    from afctl.cli.render import console, print_json, render_diagnostics

    found, problems = cli_context().blueprint_lint(folder)
    failing = [p for p in problems if p.is_error or strict]
    if output == "json":
        print_json({"name": found.name, "version": found.version, "valid": not failing,
                    "diagnostics": [d.to_dict() for d in problems]})  # fmt: skip
    elif problems:
        render_diagnostics(console(), problems, {})
    if output != "json":
        mark = "✗" if failing else "✓"
        warned = len(problems) - len([p for p in problems if p.is_error])
        if failing:
            click.echo(f"{mark} blueprint {found.name} {found.version}: {len(failing)} problem(s)")
        else:
            click.echo(
                f"{mark} blueprint {found.name} {found.version}: {len(found.templates())} "
                f"manifest template(s), {len(found.files())} files: ready to pack"
                + (f" ({warned} warning(s))" if warned else "")
            )
    return EXIT_INVALID if failing else EXIT_OK


@blueprint.command("render")
@click.argument("source", metavar="DIR|FILE.afbp")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="A parameter value.")
@click.option(
    "-f", "--values", "files", multiple=True, metavar="FILE", help="A YAML file of values."
)
def render(source: str, sets: tuple[str, ...], files: tuple[str, ...]) -> int:
    """Print a blueprint's manifests rendered from its parameters (like helm template).

    Values: the parameters' defaults, then each -f file, then each --set (the right-most
    wins). An archive is checked and extracted to a temporary folder first.
    """

    _, rendered = cli_context().blueprint_render(source, list(sets), list(files))
    for index, item in enumerate(rendered):
        if index:
            click.echo("---")
        click.echo(f"# Source: {item.path}")
        click.echo(item.text, nl=not item.text.endswith("\n"))
    return EXIT_OK


@blueprint.command("pack")
@click.argument("folder", type=click.Path(file_okay=False))
@click.option("-o", "--output", "target", metavar="FILE", help="The archive (NAME-VERSION.afbp).")
def pack(folder: str, target: str | None) -> int:
    """Pack a blueprint into a reproducible .afbp archive (after a clean lint)."""
    import hashlib

    path, manifest = cli_context().blueprint_pack(folder, target)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    click.echo(
        f"packed {manifest['name']} {manifest['version']} -> {path} "
        f"({len(manifest['files'])} files, {path.stat().st_size} bytes, sha256 {digest})"
    )
    return EXIT_OK


@blueprint.command("install")
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


@blueprint.command("uninstall")
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


@blueprint.command("list")
@output_option("text", "json")
@state_options
def list_installed(output: str, context: Context) -> int:
    """List installed blueprints with their versions, values and trust."""
    import json

    installed = context.blueprint_list()
    if output == "json":
        from afctl.cli.render import print_json

        print_json(installed)
        return EXIT_OK
    if not installed:
        click.echo("no blueprint is installed")
        return EXIT_OK
    from afctl.cli.render import console
    from afctl.cli.render.state import print_columns

    rows = [["NAME", "VERSION", "ENV", "TRUSTED", "RESOURCES", "VALUES"]]
    for name, entry in installed.items():
        rows.append([name, str(entry["version"]), str(entry.get("env")),
                     "yes" if entry["trusted"] else "no", str(len(entry.get("resources") or [])),
                     json.dumps(entry.get("values"), sort_keys=True)])  # fmt: skip
    print_columns(console(), rows)
    return EXIT_OK


@blueprint.command("trust")
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


@blueprint.command("upgrade")
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


@blueprint.command("publish")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--registry", required=True, metavar="NAME|DIR", help="A folder registry.")
@state_options
def publish(archive: str, registry: str, context: Context) -> int:
    """Add a checked .afbp archive to a folder registry (index.json updated)."""

    entry = context.blueprint_publish(archive, registry)
    click.echo(f"published {entry['file']} (sha256 {entry['digest']}) to {registry}")
    return EXIT_OK


@blueprint.command("search")
@click.argument("text", default="")
@click.option("--category", help="Only this category.")
@output_option("text", "json")
@state_options
def search(text: str, category: str | None, output: str, context: Context) -> int:
    """Find blueprints in the workspace's registries by name, description or tag."""

    found = context.blueprint_search(text, category)
    if output == "json":
        from afctl.cli.render import print_json

        print_json(found)
        return EXIT_OK
    if not found:
        click.echo("no blueprint matches")
        return EXIT_OK
    from afctl.cli.render import console
    from afctl.cli.render.state import print_columns

    rows = [["NAME", "VERSION", "CATEGORY", "PRICING", "REGISTRY", "DESCRIPTION"]]
    for item in found:
        pricing = item.get("pricing") or {}
        price = pricing.get("model", "-") + (
            f" {pricing['price']} {pricing.get('currency', 'USD')}" if "price" in pricing else ""
        )
        rows.append([item["name"], item["version"], str(item.get("category") or "-"), price,
                     item["registry"], str(item.get("description") or "")[:60]])  # fmt: skip
    print_columns(console(), rows)
    return EXIT_OK


@blueprint.command("info")
@click.argument("name")
@output_option("text", "json")
@state_options
def info(name: str, output: str, context: Context) -> int:
    """Show a published blueprint: versions, digests, metadata, pricing."""
    import json

    data = context.blueprint_info(name)
    if output == "json":
        from afctl.cli.render import print_json

        print_json(data)
        return EXIT_OK
    click.echo(f"{name} (registry {data['registry']})")
    for version, entry in sorted(data.get("versions", {}).items()):
        meta = entry.get("metadata") or {}
        click.echo(
            f"  {version}  sha256 {entry['digest'][:16]}...  {meta.get('description') or ''}"
        )
    latest = max(data.get("versions", {}), default=None)
    if latest:
        meta = data["versions"][latest].get("metadata") or {}
        for key in ("category", "tags", "license", "pricing", "requires", "parameters"):
            if meta.get(key) is not None:
                click.echo(f"  {key}: {json.dumps(meta[key], ensure_ascii=False)}")
    return EXIT_OK

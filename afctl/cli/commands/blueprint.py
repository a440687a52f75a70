"""`afctl blueprint`: lint, render, pack, install, uninstall, list and trust blueprints."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import (
    cli_context,
    output_option,
)
from afctl.errors import EXIT_INVALID, EXIT_OK

if TYPE_CHECKING:
    pass


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


def _register() -> None:
    from afctl.cli.commands.blueprint_install import (
        install,
        list_installed,
        trust_command,
        uninstall,
        upgrade,
    )
    from afctl.cli.commands.blueprint_registry import info, publish, search

    for command in (install, upgrade, uninstall, list_installed, trust_command, publish, search,
                    info):  # fmt: skip
        blueprint.add_command(command)


_register()

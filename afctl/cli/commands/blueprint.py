"""`afctl blueprint`: lint, render and pack blueprints."""

from __future__ import annotations

import click

from afctl.cli.params import output_option
from afctl.errors import EXIT_INVALID, EXIT_OK


@click.group()
def blueprint() -> None:
    """Lint, render and pack blueprints."""


@blueprint.command("lint")
@click.argument("folder", type=click.Path(file_okay=False))
@output_option("text", "json")
def lint(folder: str, output: str) -> int:
    """Check a blueprint: schema, rendering with defaults, the rendered manifests, documented
    parameters, eval suites (exit 3 on problems)."""
    from afctl.cli.render import console, print_json, render_diagnostics
    from afctl.context import Context

    found, problems = Context().blueprint_lint(folder)
    if output == "json":
        print_json({"name": found.name, "version": found.version, "valid": not problems,
                    "diagnostics": [d.to_dict() for d in problems]})  # fmt: skip
    elif problems:
        render_diagnostics(console(), problems, {})
        click.echo(f"✗ blueprint {found.name} {found.version}: {len(problems)} problem(s)")
    else:
        click.echo(
            f"✓ blueprint {found.name} {found.version}: {len(found.templates())} manifest "
            f"template(s), {len(found.files())} files: ready to pack"
        )
    return EXIT_INVALID if problems else EXIT_OK


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
    from afctl.context import Context

    _, rendered = Context().blueprint_render(source, list(sets), list(files))
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

    from afctl.context import Context

    path, manifest = Context().blueprint_pack(folder, target)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    click.echo(
        f"packed {manifest['name']} {manifest['version']} -> {path} "
        f"({len(manifest['files'])} files, {path.stat().st_size} bytes, sha256 {digest})"
    )
    return EXIT_OK

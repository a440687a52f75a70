"""`afctl get` and `afctl describe`: applied resources."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import LabelSelector, output_option, remote_state_options
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


def _split(kind: str, name: str | None) -> tuple[str, str | None]:
    if "/" in kind and name is None:
        kind, name = kind.split("/", 1)
    return kind, name


@click.command()
@click.argument("kind")
@click.argument("name", required=False)
@click.option(
    "-l", "--selector", type=LabelSelector(),
    help="Only resources whose labels match (team=cx,tier!=3).",
)  # fmt: skip
@output_option("table", "wide", "yaml", "json", "name", default="table")
@remote_state_options
def get(kind: str, name: str | None, selector: str | None, output: str, context: Context) -> int:
    """List applied resources, or show one.

    KIND may be singular or plural, any case, or `all`; KIND/NAME works too.
    """
    from afctl.cli.render import console, print_json
    from afctl.cli.render.state import print_columns, resource_rows

    kind, name = _split(kind, name)
    found = context.get(kind, name, selector)
    if output == "json":
        items = [r.to_dict() for r in found]
        print_json(items[0] if name is not None else items)
        return EXIT_OK
    if output == "yaml":
        from afctl.manifests.dump import dump_all_yaml

        if found:
            from afctl.safety.secrets import redact_known

            click.echo(redact_known(dump_all_yaml([r.document for r in found])), nl=False)
        return EXIT_OK
    if output == "name":
        for resource in found:
            click.echo(resource.ref)
        return EXIT_OK
    out = console()
    if not found:
        what = "" if kind.lower() == "all" else f"{kind} "
        out.print(f"No {what}resources applied in environment {context.env}.", markup=False)
        return EXIT_OK
    print_columns(out, resource_rows(found, wide=output == "wide"))
    return EXIT_OK


@click.command()
@click.argument("target", metavar="KIND/NAME")
@remote_state_options
def describe(target: str, context: Context) -> int:
    """Show an applied resource with its source and history."""
    from afctl.cli.render import console
    from afctl.cli.render.state import render_description
    from afctl.manifests.kinds import parse_ref

    kind, name = parse_ref(target)
    render_description(console(), context.describe(kind, name))
    return EXIT_OK

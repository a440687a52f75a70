"""`afctl registry`: name the blueprint registries of a workspace."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, state_options
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.group()
def registry() -> None:
    """Name the blueprint registries this workspace uses."""


@registry.command("add")
@click.argument("name")
@click.argument("location", metavar="DIR|URL")
@state_options
def add(name: str, location: str, context: Context) -> int:
    """Name a registry: a folder (publishable) or a static http(s) URL."""

    context.registry_add(name, location)
    click.echo(f"registry {name}: {location}")
    return EXIT_OK


@registry.command("list")
@output_option("text", "json")
@state_options
def list_registries(output: str, context: Context) -> int:
    """List the registries this workspace uses."""

    known = context.registries()
    if output == "json":
        from afctl.cli.render import print_json

        print_json(known)
    else:
        for name, location in known.items():
            click.echo(f"{name}\t{location}")
    return EXIT_OK

"""`afctl schema`: the JSON Schemas of the manifest kinds, for editors and CI."""

from __future__ import annotations

from pathlib import Path

import click

from afctl.errors import EXIT_OK


@click.group()
def schema() -> None:
    """Export the JSON Schemas of the manifest kinds."""


@schema.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path) -> int:
    """Write one JSON Schema per kind (and afctl.json for any kind) into DIRECTORY.

    Point your editor at them with a first line such as
    `# yaml-language-server: $schema=.schemas/agent.json`.
    """
    from afctl.manifests.schema import export_schemas

    for path in export_schemas(directory):
        click.echo(str(path))
    return EXIT_OK

"""`afctl init`: scaffold a repository."""

from __future__ import annotations

from pathlib import Path

import click

from afctl.errors import EXIT_OK


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False, path_type=Path))
@click.option("--template", default="starter", show_default=True, help="The template to use.")
@click.option("--name", help="The project name (default: the folder's name).")
@click.option("--force", is_flag=True, help="Overwrite files the template also has.")
def init(directory: Path, template: str, name: str | None, force: bool) -> int:
    """Scaffold a new afctl repository from a template.

    The starter has an agent, a python tool, a workflow, an eval suite and a knowledge pack,
    all on the offline model local/echo, plus JSON Schemas for your editor in .schemas/.
    """
    from rich.text import Text

    from afctl.cli.render import console
    from afctl.scaffold import init_project

    result = init_project(directory, template, name=name, force=force)
    out = console()
    out.print(
        Text("✓ ", style="bold green")
        + Text(f"created {result.project} in {directory} from the {template} template")
    )
    for path in result.files:
        out.print(f"  {path}", markup=False)
    out.print()
    where = "" if str(directory) == "." else f"cd {directory} && "
    out.print(f"Next: {where}afctl validate -f .", markup=False)
    return EXIT_OK

"""`afctl diff`: unified diff of the applied state against the manifests, like kubectl diff."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import filename_option, prune_option, state_options
from afctl.errors import EXIT_CHANGES, EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.command()
@filename_option()
@prune_option
@state_options
def diff(paths: tuple[str, ...], prune: bool, context: Context) -> int:
    """Diff the applied state against manifests (unified).

    Exits 0 when nothing differs and 2 when something does.
    """
    from rich.text import Text

    from afctl.cli.render import console

    diffs = context.diff(list(paths), prune=prune)
    out = console()
    for item in diffs:
        for line in item.text.splitlines():
            style = ""
            if line.startswith(("+++", "---")):
                style = "bold"
            elif line.startswith("+"):
                style = "green"
            elif line.startswith("-"):
                style = "red"
            elif line.startswith("@@"):
                style = "cyan"
            out.print(Text(line, style=style))
    return EXIT_CHANGES if diffs else EXIT_OK

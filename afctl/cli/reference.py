"""The command reference in docs/cli.md, generated from every command's `--help` (`make
docs`); a test fails when the file and the commands disagree."""

from __future__ import annotations

from collections.abc import Iterator

import click

WIDTH = 100

HEADER = """# Command reference

Generated from `afctl --help` and each command's `--help` by `make docs`; do not edit by
hand (a test fails when this page and the commands disagree). Task-oriented pages: the
[README](../README.md#documentation).
"""


def walk(
    command: click.Command, path: list[str], parent: click.Context | None = None
) -> Iterator[tuple[list[str], click.Context]]:
    """Every command under `command` with its context, depth first in listing order."""
    settings = {**command.context_settings, "terminal_width": WIDTH, "max_content_width": WIDTH}
    context = click.Context(command, info_name=path[-1], parent=parent, **settings)
    yield path, context
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            child = command.get_command(context, name)
            if child is not None and not child.hidden:
                yield from walk(child, [*path, name], context)


def cli_reference() -> str:
    from afctl.cli.main import cli

    parts = [HEADER]
    for path, context in walk(cli, ["afctl"]):
        parts.append(f"\n## {' '.join(path)}\n\n```text\n{context.get_help().rstrip()}\n```\n")
    return "".join(parts)

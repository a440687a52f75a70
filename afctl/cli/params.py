"""Options shared by many commands, defined once so that commands do not drift apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def filename_option(required: bool = True) -> Callable[[F], F]:
    return click.option(
        "-f",
        "--filename",
        "paths",
        multiple=True,
        required=required,
        metavar="PATH",
        help="A manifest file, a folder (read recursively), or - for stdin. Repeatable.",
    )


def output_option(*choices: str, default: str = "text") -> Callable[[F], F]:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(choices, case_sensitive=False),
        default=default,
        show_default=True,
        help="Output format.",
    )


workspace_option = click.option(
    "--workspace",
    type=click.Path(file_okay=False),
    envvar="AFCTL_WORKSPACE",
    help="The repository root (or .afctl folder) to use; found by walking up by default.",
)

env_option = click.option(
    "--env",
    envvar="AFCTL_ENV",
    default="default",
    show_default=True,
    help="The environment whose applied state is used.",
)

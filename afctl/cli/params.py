"""Options shared by many commands, defined once so that commands do not drift apart."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def filename_option(
    required: bool = True,
    help: str = "A manifest file, a folder (read recursively), or - for stdin. Repeatable.",
) -> Callable[[F], F]:
    return click.option(
        "-f", "--filename", "paths", multiple=True, required=required, metavar="PATH", help=help
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


class Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds, written `30`, `30s`, `2m` or `1h`."""

    name = "duration"
    _UNITS: ClassVar[dict[str, float]] = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0}

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)):
            return float(value)
        text = str(value).strip().lower()
        number, unit = text.rstrip("smh"), text[len(text.rstrip("smh")) :]
        try:
            seconds = float(number) * self._UNITS[unit]
        except (ValueError, KeyError):
            self.fail(f"{value!r} is not a duration such as 30s, 2m or 1h", param, ctx)
        if seconds < 0:
            self.fail("a duration cannot be negative", param, ctx)
        return seconds


prune_option = click.option(
    "--prune",
    is_flag=True,
    help="Also delete resources these files applied earlier but no longer define.",
)

yes_option = click.option(
    "-y", "--yes", is_flag=True, help="Apply without asking (required when not on a terminal)."
)

lock_timeout_option = click.option(
    "--lock-timeout",
    type=Duration(),
    default="10s",
    show_default=True,
    help="How long to wait for another apply to release the workspace lock.",
)


def state_options(function: F) -> F:
    """--env and --workspace, for every command that reads or writes applied state."""
    return workspace_option(env_option(function))

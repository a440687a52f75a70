"""Options shared by many commands, defined once so that commands do not drift apart."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

if TYPE_CHECKING:
    from afctl.context import Context

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


def executor_option(what: str) -> Callable[[F], F]:
    """`--executor local|celery`: where `what` runs (AFCTL_EXECUTOR, or the workspace's
    `executor` setting, when not given; see `afctl.workers.settings.executor`)."""
    return click.option(
        "--executor",
        type=click.Choice(["local", "celery"]),
        envvar="AFCTL_EXECUTOR",
        help=f"Where {what} run: here (the default), or queued for afctl workers "
        "(AFCTL_BROKER_URL); AFCTL_EXECUTOR or .afctl/config.yaml sets it too.",
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
    """Seconds, written `30`, `30s`, `2m`, `1h`, `7d` or `2w` (see `afctl.durations`)."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        from afctl.durations import seconds_of

        if isinstance(value, (int, float)):
            return float(value)
        seconds = seconds_of(str(value).strip().lower())
        if seconds is None:
            self.fail(f"{value!r} is not a duration such as 30s, 2m or 1h", param, ctx)
        return seconds


class Ramp(click.ParamType):  # type: ignore[type-arg]
    """Rising concurrencies, written `1,4,16,64`."""

    name = "ramp"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> list[int]:
        from afctl.eval.stress import parse_ramp

        if isinstance(value, list):
            return value
        try:
            return parse_ramp(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class LabelSelector(click.ParamType):  # type: ignore[type-arg]
    """A label selector (`team=cx,tier!=3,beta,!legacy`), checked as it is read; the command
    gets the text, which the state service reads."""

    name = "selector"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from afctl.state.selectors import parse_selector

        parse_selector(str(value))  # a UsageError naming the term it cannot read
        return str(value)


class KeyValue(click.ParamType):  # type: ignore[type-arg]
    """`NAME=VALUE` (the value may be empty or hold `=`), as a (name, value) pair."""

    name = "name=value"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        name, equals, text = str(value).partition("=")
        if not equals or not name.strip():
            self.fail(f"{value}: write NAME=VALUE", param, ctx)
        return name.strip(), text


def pairs_option(*names: str, help: str) -> Callable[[F], F]:
    """A repeatable NAME=VALUE option; the command gets a dict (the last value of a name wins)."""

    def to_dict(
        _ctx: click.Context, _param: click.Parameter, value: tuple[tuple[str, str], ...]
    ) -> dict[str, str]:
        return dict(value)

    return click.option(*names, type=KeyValue(), multiple=True, metavar="NAME=VALUE",
                        callback=to_dict, help=help)  # fmt: skip


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


def cli_context(
    workspace: str | None = None, env: str | None = None, server: str | None = None
) -> Context:
    """The one `Context` of this invocation, on click's `ctx.obj`, built on first use with
    the CLI's console (which reads -o/--output, --yes and --stream of the command) and closed
    when the command ends. With `server`, an `afctl.Client` of that server stands in for it
    (the commands that take --server call only what the client offers)."""
    from afctl.cli.console import CliConsole
    from afctl.context import Context

    ctx = click.get_current_context()
    root = ctx.find_root()
    obj = root.ensure_object(dict)
    context = obj.get("context")
    if context is None:
        params = ctx.params
        console = CliConsole(str(params.get("output") or "text"), yes=bool(params.get("yes")),
                             stream=params.get("stream"))  # fmt: skip
        if server:
            from afctl.client import Client

            source = ctx.get_parameter_source("env")
            chosen = env if source not in (None, click.core.ParameterSource.DEFAULT) else None
            client = Client(server, console=console, workspace=workspace, env=chosen)
            console.workspace = client.workspace
            obj["context"] = client
            root.call_on_close(client.close)
            return cast("Context", client)
        context = obj["context"] = Context(workspace=workspace, env=env, console=console)
        console.workspace = context.workspace
        root.call_on_close(context.close)
    return cast("Context", context)


server_option = click.option(
    "--server",
    envvar="AFCTL_SERVER",
    metavar="URL",
    help="Do this on afctl serve at URL (authenticated by AFCTL_API_KEY), not locally.",
)


def remote_state_options(function: F) -> F:
    """`state_options` and --server: the command works on a local workspace, or on a server
    (`context` is then an `afctl.Client`)."""

    @functools.wraps(function)
    def with_context(
        *args: Any, workspace: str | None, env: str, server: str | None, **kwargs: Any
    ) -> Any:
        return function(*args, context=cli_context(workspace, env, server), **kwargs)

    return server_option(workspace_option(env_option(with_context)))  # type: ignore[return-value]


def state_options(function: F) -> F:
    """--env and --workspace, for every command that reads or writes applied state; the
    command is given `context`, the invocation's `Context` for them (see `cli_context`)."""

    @functools.wraps(function)
    def with_context(*args: Any, workspace: str | None, env: str, **kwargs: Any) -> Any:
        return function(*args, context=cli_context(workspace, env), **kwargs)

    return workspace_option(env_option(with_context))  # type: ignore[return-value]

"""`afctl serve` and `afctl triggers`: serve the workspace (API, webhooks, schedules, watches),
and list the applied workflows' triggers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from afctl.cli.params import (
    Duration,
    env_option,
    executor_option,
    output_option,
    pairs_option,
    state_options,
    workspace_option,
)
from afctl.errors import EXIT_OK
from afctl.server.limits import MAX_BODY, MAX_RUNS_PER_KEY, RATE_PER_MIN, REQUEST_TIMEOUT_S

if TYPE_CHECKING:
    from afctl.context import Context
    from afctl.server.core import Server, ServeSettings


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on; another than this machine's needs API keys or JWTs set up.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="The port (0: any free one).",
)
@pairs_option("--var", "variables", help="A variable.")
@click.option(
    "--insecure-no-auth",
    is_flag=True,
    help="Let every caller act as admin, with no credential (this machine only).",
)
@click.option(
    "--jwks",
    type=click.Path(dir_okay=False),
    envvar="AFCTL_JWT_JWKS",
    help="A JWKS file of RS256/ES256 public keys to check JWTs with.",
)
@click.option("--jwt-issuer", envvar="AFCTL_JWT_ISSUER", help="The `iss` JWTs must have.")
@click.option("--jwt-audience", envvar="AFCTL_JWT_AUDIENCE", help="The `aud` JWTs must have.")
@click.option(
    "--jwt-roles-claim",
    envvar="AFCTL_JWT_ROLES_CLAIM",
    default="afctl_roles",
    show_default=True,
    help="The JWT claim holding the caller's roles.",
)
@click.option(
    "--cors-origin",
    "cors_origins",
    multiple=True,
    help="An origin browsers may call the API from (CORS is off without one).",
)
@click.option(
    "--max-body",
    type=click.IntRange(1_000, 100_000_000),
    default=MAX_BODY,
    show_default=True,
    help="The largest request body, in bytes.",
)
@click.option(
    "--rate-limit",
    type=click.IntRange(0),
    default=RATE_PER_MIN,
    show_default=True,
    help="Requests a minute per key (0: no limit).",
)
@click.option(
    "--max-runs-per-key",
    type=click.IntRange(1),
    default=MAX_RUNS_PER_KEY,
    show_default=True,
    help="Runs one key may have going at once.",
)
@click.option(
    "--request-timeout",
    type=Duration(),
    default=f"{REQUEST_TIMEOUT_S:g}s",
    show_default=True,
    help="How long a request waits for its run; then it answers 202 and the run goes on.",
)
@click.option(
    "--grace",
    type=Duration(),
    default="10s",
    show_default=True,
    help="How long running requests and runs get to finish after SIGTERM.",
)
@executor_option("background runs and triggered workflows")
@workspace_option
@env_option
def serve(
    host: str, port: int, variables: dict[str, str], insecure_no_auth: bool, jwks: str | None,
    jwt_issuer: str | None, jwt_audience: str | None, jwt_roles_claim: str,
    cors_origins: tuple[str, ...], max_body: int, rate_limit: int, max_runs_per_key: int,
    request_timeout: float, grace: float, executor: str | None, workspace: str | None,
    env: str | None,
) -> int:  # fmt: skip
    """Serve the API, OpenAI-compatible endpoints and triggers.

    The REST API (/v1), the OpenAI-compatible endpoints, and the webhooks, schedules and
    watches of the applied state, following every apply.

    Callers authenticate with `Authorization: Bearer KEY` (afctl auth keys create) or a JWT
    (HS256 with AFCTL_JWT_SECRET, or RS256/ES256 with --jwks); each route needs a role in
    this environment. GET /v1/openapi.json describes the API; /healthz, /readyz and
    /metrics (this machine, or AFCTL_METRICS_TOKEN) need no key. Webhooks POST to their path;
    signed ones need X-Afctl-Timestamp and X-Afctl-Signature (sha256=HMAC of
    "timestamp.body"), or GitHub's X-Hub-Signature-256 with X-GitHub-Delivery. SIGTERM or
    Ctrl-C drains: running requests and runs get --grace to finish, then are interrupted.
    """
    import asyncio

    from afctl.server.auth import jwt_settings
    from afctl.server.core import ServeSettings
    from afctl.server.limits import Limits

    settings = ServeSettings(
        host, port, workspace, env, variables,
        jwt_settings(jwks, jwt_issuer, jwt_audience, jwt_roles_claim), insecure_no_auth,
        Limits(max_body, rate_limit, max_runs_per_key=max_runs_per_key,
               request_timeout_s=request_timeout),
        cors_origins, grace, executor=executor,
    )  # fmt: skip

    def ready(address: str, server: Server) -> None:
        triggers = len(server.triggers.triggers)
        auth = ("no authentication (--insecure-no-auth)" if insecure_no_auth
                else "API keys" + (" and JWTs" if settings.jwt.enabled else ""))  # fmt: skip
        queued = f" · runs queued on {server.queue.settings.shown}" if server.queue else ""
        click.echo(f"afctl serve: listening on {address} · {triggers} trigger(s) · env "
                   f"{server.env} · {auth}{queued}", err=True)  # fmt: skip

    asyncio.run(_serve(settings, ready))
    return EXIT_OK


async def _serve(settings: ServeSettings, ready: Callable[[str, Server], None]) -> None:
    from afctl.server.app import serve as serving

    await serving(settings, on_ready=ready)


@click.command()
@output_option("text", "json")
@state_options
def triggers(output: str, context: Context) -> int:
    """List the applied workflows' triggers and next fire times.

    Schedules show their next occurrence in UTC and in their own time zone.
    """

    found = context.triggers()
    rows = [
        {
            "workflow": trigger.workflow,
            "type": trigger.type,
            "trigger": trigger.describe(),
            "next": None if when is None else when.isoformat(),
        }
        for trigger, when in found
    ]
    from afctl.cli.render import show_listing

    def table() -> list[list[str]]:
        return [["WORKFLOW", "TYPE", "TRIGGER", "NEXT (UTC)"]] + [
            [str(r["workflow"]), str(r["type"]), str(r["trigger"]), str(r["next"] or "-")]
            for r in rows
        ]

    empty = f"no workflow applied in environment {context.env} declares triggers"
    show_listing(output, rows, empty, table)
    return EXIT_OK

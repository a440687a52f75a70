"""`afctl auth keys`: the API keys `afctl serve` will accept, by role and environment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.auth.keys import ROLES
from afctl.cli.params import Duration, output_option, state_options
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.group()
def auth() -> None:
    """API keys of the server: create, list, revoke."""


@auth.group()
def keys() -> None:
    """API keys: each has a role in one environment; only a hash of it is stored."""


@keys.command("create")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the key may do.")
@click.option("--name", help="A name to recognise the key by (and revoke it with).")
@click.option("--expires", type=Duration(), help="How long the key works: 30d, 12h, ...")
@output_option("text", "json")
@state_options
def create(
    role: str, name: str | None, expires: float | None, output: str, context: Context
) -> int:
    """Create a key for --role in the environment of --env; it is printed once, here.

    Only its SHA-256 is stored (in state.db): keep the key where your application reads its
    secrets. Keys start with afk_, so secret scanners and afctl's redaction know them.
    """
    from afctl.cli.commands.apply import command_line

    key, secret = context.api_key_create(role, name=name, expires_in_s=expires,
                                     created_by=command_line())  # fmt: skip
    if output == "json":
        from afctl.cli.render import print_json

        print_json({**key.to_dict(), "key": secret}, redact=False)
        return EXIT_OK
    click.echo(secret)
    expiry = f", until {key.expires_at}" if key.expires_at else ""
    click.echo(f"key {key.id} ({key.role} in {key.env}{expiry}): shown once, store it now",
               err=True)  # fmt: skip
    return EXIT_OK


@keys.command("list")
@output_option("text", "json")
@state_options
def list_keys(output: str, context: Context) -> int:
    """List the keys (never the keys themselves): role, environment, state."""
    from afctl.cli.render import show_listing
    from afctl.ids import utc_now

    found = context.api_keys()
    now = utc_now()

    def rows() -> list[list[str]]:
        return [["ID", "NAME", "PREFIX", "ROLE", "ENV", "STATE", "CREATED", "EXPIRES"]] + [
            [k.id, k.name or "-", k.prefix + "…", k.role, k.env, k.state(now), k.created_at,
             k.expires_at or "-"]
            for k in found
        ]  # fmt: skip

    data = [{**k.to_dict(), "state": k.state(now)} for k in found]
    show_listing(output, data, "no API keys yet: afctl auth keys create --role viewer", rows)
    return EXIT_OK


@keys.command("revoke")
@click.argument("key_id", metavar="ID|NAME")
@state_options
def revoke(key_id: str, context: Context) -> int:
    """Revoke a key (by id, a unique prefix of one, or its name): it stops working at once."""
    key = context.api_key_revoke(key_id)
    click.echo(f"key {key.id} revoked")
    return EXIT_OK


@click.command()
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="How many of the latest records.",
)
@output_option("table", "json", default="table")
@state_options
def audit(limit: int, output: str, context: Context) -> int:
    """List who changed what through the server, and how it ended.

    Oldest first; each record has the request id the caller was answered with
    (X-Request-Id). Changes refused (401, 403, 429) are recorded too."""
    from afctl.cli.render import show_listing

    records = context.audit_records(limit=limit, env=context.env)

    def rows() -> list[list[str]]:
        return [["AT", "WHO", "ROLE", "ACTION", "TARGET", "RESULT", "REQUEST"]] + [
            [r.at, r.who, r.role, r.action, r.target, f"{r.result} ({r.status})", r.request_id]
            for r in records
        ]

    show_listing(output, [r.to_dict() for r in records],
                 f"no audit records in environment {context.env} yet", rows)  # fmt: skip
    return EXIT_OK

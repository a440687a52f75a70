"""`afctl blueprint publish`, `search` and `info`: blueprints in registries."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import (
    output_option,
    state_options,
)
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.command("publish")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
@click.option("--registry", required=True, metavar="NAME|DIR", help="A folder registry.")
@state_options
def publish(archive: str, registry: str, context: Context) -> int:
    """Add a checked .afbp archive to a folder registry (index.json updated)."""

    entry = context.blueprint_publish(archive, registry)
    click.echo(f"published {entry['file']} (sha256 {entry['digest']}) to {registry}")
    return EXIT_OK


@click.command("search")
@click.argument("text", default="")
@click.option("--category", help="Only this category.")
@output_option("text", "json")
@state_options
def search(text: str, category: str | None, output: str, context: Context) -> int:
    """Find blueprints in the workspace's registries by name, description or tag."""

    from afctl.cli.render import show_listing

    found = context.blueprint_search(text, category)

    def rows() -> list[list[str]]:
        table = [["NAME", "VERSION", "CATEGORY", "PRICING", "REGISTRY", "DESCRIPTION"]]
        for item in found:
            pricing = item.get("pricing") or {}
            price = pricing.get("model", "-") + (
                f" {pricing['price']} {pricing.get('currency', 'USD')}"
                if "price" in pricing else ""
            )  # fmt: skip
            table.append([item["name"], item["version"], str(item.get("category") or "-"),
                          price, item["registry"],
                          str(item.get("description") or "")[:60]])  # fmt: skip
        return table

    show_listing(output, found, "no blueprint matches", rows)
    return EXIT_OK


@click.command("info")
@click.argument("name")
@output_option("text", "json")
@state_options
def info(name: str, output: str, context: Context) -> int:
    """Show a published blueprint: versions, digests, metadata, pricing."""
    import json

    data = context.blueprint_info(name)
    if output == "json":
        from afctl.cli.render import print_json

        print_json(data)
        return EXIT_OK
    click.echo(f"{name} (registry {data['registry']})")
    for version, entry in sorted(data.get("versions", {}).items()):
        meta = entry.get("metadata") or {}
        click.echo(
            f"  {version}  sha256 {entry['digest'][:16]}...  {meta.get('description') or ''}"
        )
    latest = max(data.get("versions", {}), default=None)
    if latest:
        meta = data["versions"][latest].get("metadata") or {}
        for key in ("category", "tags", "license", "pricing", "requires", "parameters"):
            if meta.get(key) is not None:
                click.echo(f"  {key}: {json.dumps(meta[key], ensure_ascii=False)}")
    return EXIT_OK

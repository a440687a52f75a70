"""`afctl knowledge`: build and search knowledge packs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from afctl.cli.params import filename_option, output_option, state_options
from afctl.errors import EXIT_OK

if TYPE_CHECKING:
    from afctl.context import Context


@click.group()
def knowledge() -> None:
    """Build and search the indexes of knowledge packs."""


@knowledge.command("build")
@click.argument("name")
@filename_option(required=False, help="Take the pack from these manifests, not the state.")
@output_option("text", "json")
@state_options
def build(name: str, paths: tuple[str, ...], output: str, context: Context) -> int:
    """Index a knowledge pack's sources (only files that changed are read again)."""

    report = context.knowledge_build(name, paths=list(paths) or None)
    if output == "json":
        from afctl.cli.render import print_json

        print_json(report.to_dict())
    else:
        click.echo(
            f"knowledge/{name}: {report.files} files ({report.indexed} indexed, "
            f"{report.unchanged} unchanged, {report.removed} removed), {report.chunks} chunks "
            f"in {report.seconds:.2f} s"
        )
    return EXIT_OK


@knowledge.command("query")
@click.argument("name")
@click.argument("question")
@click.option(
    "-k", "top_k", type=click.IntRange(1, 100), help="How many chunks (default: the pack's top_k)."
)
@filename_option(required=False, help="Take the pack from these manifests, not the state.")
@output_option("text", "json")
@state_options
def query(
    name: str,
    question: str,
    top_k: int | None,
    paths: tuple[str, ...],
    output: str,
    context: Context,
) -> int:
    """Search a knowledge pack; each hit shows its file and line span."""

    hits = context.knowledge_query(name, question, k=top_k, paths=list(paths) or None)
    if output == "json":
        from afctl.cli.render import print_json

        print_json([hit.to_dict() for hit in hits])
        return EXIT_OK
    if not hits:
        click.echo("No matches.")
    for hit in hits:
        heading = f"  ({hit.heading})" if hit.heading else ""
        click.echo(f"{hit.source}  score {hit.score:.2f}{heading}")
        click.echo("    " + " ".join(hit.text.split())[:300])
    return EXIT_OK

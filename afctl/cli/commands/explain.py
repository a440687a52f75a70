"""`afctl explain`: documentation of a kind or field, like `kubectl explain`."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence

import click

from afctl.cli.params import output_option
from afctl.errors import EXIT_OK
from afctl.manifests.explain import FieldInfo


@click.command()
@click.argument("target", metavar="KIND[.FIELD.PATH]")
@click.option("--recursive", is_flag=True, help="List the fields of the fields, all the way down.")
@output_option("text", "json")
def explain(target: str, recursive: bool, output: str) -> int:
    """Document a kind or field, like kubectl explain.

    Examples: afctl explain Agent, afctl explain Agent.spec.tools,
    afctl explain tool.spec --recursive.
    """
    from afctl.manifests.explain import explain as explain_target

    result = explain_target(target, recursive=recursive)
    if output == "json":
        from afctl.cli.render import print_json

        print_json(result.to_dict())
        return EXIT_OK
    from rich.text import Text

    from afctl.cli.render import console

    out = console()
    out.print(Text("KIND:     ", style="bold") + Text(result.kind))
    out.print(Text("VERSION:  ", style="bold") + Text(result.version))
    out.print()
    if result.path:
        out.print(
            Text("FIELD:    ", style="bold")
            + Text(".".join(result.path))
            + Text(f" <{result.type}>", style="cyan")
        )
        out.print()
    out.print(Text("DESCRIPTION:", style="bold"))
    for line in textwrap.wrap(result.description or "(no description)", 92):
        out.print("    " + line, markup=False)
    if result.choices:
        out.print("    One of: " + ", ".join(str(c) for c in result.choices), markup=False)
    if result.has_default:
        out.print(f"    Default: {json.dumps(result.default)}", markup=False)
    if result.fields:
        out.print()
        title = "FIELDS:"
        if result.discriminator:
            title += f"  (which apply depends on `{result.discriminator}`)"
        out.print(Text(title, style="bold"))
        _print_fields(out, result.fields, 1, recursive)
    return EXIT_OK


def _print_fields(out: object, fields: Sequence[FieldInfo], level: int, recursive: bool) -> None:
    from rich.text import Text

    indent = "  " * level
    for info in fields:
        line = Text(indent) + Text(info.name, style="bold") + Text(f"  <{info.type}>", style="cyan")
        if info.required:
            line.append("  -required-", style="red")
        elif info.required_for:
            line.append(f"  -required for {', '.join(info.required_for)}-", style="red")
        if info.only_for:
            line.append(f"  (type: {', '.join(info.only_for)})", style="magenta")
        out.print(line)  # type: ignore[attr-defined]
        if not recursive:
            for text in textwrap.wrap(info.description, 90 - len(indent)):
                out.print(indent + "  " + text, markup=False)  # type: ignore[attr-defined]
        if info.children:
            _print_fields(out, info.children, level + 1, recursive)

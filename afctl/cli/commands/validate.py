"""`afctl validate`: check manifests and report every problem at once."""

from __future__ import annotations

import click

from afctl.cli.params import filename_option, output_option, workspace_option
from afctl.errors import EXIT_INVALID, EXIT_OK


@click.command()
@filename_option()
@output_option("text", "json")
@workspace_option
@click.option("--no-cache", is_flag=True, help="Check every file again, ignoring earlier results.")
def validate(paths: tuple[str, ...], output: str, workspace: str | None, no_cache: bool) -> int:
    """Check manifests: YAML, JSON Schema and references.

    Reports every problem in one pass with file:line:col, the JSON pointer and a hint.
    Exits 0 when the manifests are valid and 3 when they are not.
    """
    from afctl.cli.params import cli_context

    result = cli_context(workspace).validate(list(paths), use_cache=not no_cache)
    if output == "json":
        from afctl.cli.render import print_json

        print_json(result.to_dict())
    else:
        from rich.text import Text

        from afctl.cli.render import console, files_with, plural, render_diagnostics

        out = console()
        if result.diagnostics:
            render_diagnostics(out, result.diagnostics, result.sources)
            out.print()
        files = plural(len(result.files), "file")
        resources = plural(len(result.resources), "resource")
        if result.valid:
            summary = Text("✓ ", style="bold green")
            summary.append(f"{files}, {resources}: valid")
            if result.warnings:
                summary.append(f" ({plural(len(result.warnings), 'warning')})")
        else:
            summary = Text("✗ ", style="bold red")
            summary.append(
                f"{plural(len(result.errors), 'error')}"
                + (f" and {plural(len(result.warnings), 'warning')}" if result.warnings else "")
                + f" in {plural(files_with(result.errors), 'file')} "
                + f"({files} and {resources} checked)"
            )
        out.print(summary)
    return EXIT_OK if result.valid else EXIT_INVALID

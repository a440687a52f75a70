"""Rendering for the terminal (rich) and for scripts (JSON). The core never prints; this does."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from rich.console import Console

    from afctl.diagnostics import Diagnostic
    from afctl.errors import AfctlError


def console(stderr: bool = False) -> Console:
    """A rich console; colour only on a terminal, and never when NO_COLOR is set."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(data: Any, *, redact: bool = True) -> None:
    """Data for scripts, as JSON (with any secret redacted: listings are printed, and kept;
    `redact=False` only where a secret is the point, a new API key shown once)."""
    from afctl.safety.secrets import redact_known

    text = json.dumps(data, indent=2, ensure_ascii=False)
    sys.stdout.write((redact_known(text) if redact else text) + "\n")


def render_error(exc: AfctlError) -> None:
    """One message on stderr for an error the user can act on."""
    from rich.text import Text

    from afctl.safety.secrets import redact_known

    out = console(stderr=True)
    text = Text("error: ", style="bold red")
    text.append(redact_known(exc.message))  # a provider may echo the key it was sent
    out.print(text)
    if exc.hint:
        out.print(Text("hint: ", style="cyan") + Text(redact_known(exc.hint)))
    diagnostics = getattr(exc, "diagnostics", None)
    if diagnostics:
        render_diagnostics(out, diagnostics, getattr(exc, "sources", {}))


def _underline_width(line: str, col: int) -> int:
    """How many characters of the token starting at `col` (0-based) to underline."""
    rest = line[col:]
    if not rest or rest[0] in "{[-|>":
        return 1
    if rest[0] in "\"'":
        end = rest.find(rest[0], 1)
        return end + 1 if end > 0 else len(rest.rstrip())
    width = 0
    for index, char in enumerate(rest):
        if char in ",]}#" or (char == ":" and rest[index + 1 : index + 2] in ("", " ")):
            break
        width = index + 1
    return max(len(rest[:width].rstrip()), 1)


def render_diagnostics(
    out: Console, diagnostics: Sequence[Diagnostic], sources: dict[str, str]
) -> None:
    """Diagnostics grouped by file, each with its source line and a caret under the problem."""
    from rich.text import Text

    lines_of: dict[str, list[str]] = {}
    current: str | None = None
    for diagnostic in diagnostics:
        file = diagnostic.file or "<input>"
        if file != current:
            if current is not None:
                out.print()
            out.print(Text(file, style="bold underline"))
            current = file
        colour = "red" if diagnostic.is_error else "yellow"
        head = Text(f"{diagnostic.severity.value}", style=f"bold {colour}")
        head.append(f"[{diagnostic.code}]", style=colour)
        head.append(": ")
        head.append(diagnostic.summary, style="bold")
        out.print(head)
        location = file
        if diagnostic.line is not None:
            location += f":{diagnostic.line}"
            if diagnostic.col is not None:
                location += f":{diagnostic.col}"
        if diagnostic.pointer:
            location += f"  ({diagnostic.pointer})"
        out.print(Text("  --> ", style="blue") + Text(location))
        text = sources.get(file)
        if text is not None and diagnostic.line is not None:
            lines = lines_of.setdefault(file, text.splitlines())
            if 0 < diagnostic.line <= len(lines):
                from afctl.safety.secrets import redact_known

                source = redact_known(lines[diagnostic.line - 1].expandtabs(1))
                number = str(diagnostic.line)
                gutter = " " * len(number)
                out.print(Text(f"  {gutter} |", style="blue"))
                out.print(Text(f"  {number} | ", style="blue") + Text(source))
                col = (diagnostic.col or 1) - 1
                caret = " " * col + "^" * _underline_width(source, col)
                out.print(Text(f"  {gutter} | ", style="blue") + Text(caret, style=colour))
        if diagnostic.hint:
            out.print(Text("  = hint: ", style="cyan") + Text(diagnostic.hint))
        if diagnostic.detail:
            out.print(Text("  = note: ", style="cyan") + Text(diagnostic.detail))


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


def files_with(diagnostics: Iterable[Diagnostic]) -> int:
    return len({d.file for d in diagnostics if d.file})


def check_report_paths(paths: dict[str, str | None]) -> None:
    """Fail before any work when a report file (by its flag) could not be written.

    Raises:
        UsageError: its folder does not exist, or it is a folder.
    """
    from pathlib import Path

    from afctl.errors import UsageError

    for flag, value in paths.items():
        if value is None:
            continue
        target = Path(value)
        if target.is_dir():
            raise UsageError(f"{flag} {value}: is a folder; give a file name")
        if not target.parent.is_dir():
            raise UsageError(f"{flag} {value}: the folder {target.parent} does not exist")


def write_report(flag: str, value: str, text: str) -> None:
    """Write a report file whole or not at all (a reader never sees half of it).

    Raises:
        UsageError: it cannot be written.
    """
    from pathlib import Path

    from afctl.errors import UsageError
    from afctl.files import write_atomically

    try:
        write_atomically(Path(value), text)
    except OSError as exc:
        raise UsageError(f"{flag} {value}: cannot write it: {exc.strerror}") from None


def show_listing(output: str, data: Any, empty: str, rows: Callable[[], list[list[str]]]) -> None:
    """A listing the way every command shows one: the data as JSON with `-o json`; else a
    table (`rows()`: a header row, then one per item), or `empty` when there is nothing."""
    if output == "json":
        print_json(data)
        return
    if not data:
        click.echo(empty)
        return
    from afctl.cli.render.state import print_columns

    print_columns(console(), rows())

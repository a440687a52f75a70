"""The CLI's console: how the engine's events (`afctl.console`) reach the person at the
terminal, or the log of a CI job.

- On a terminal: a transient progress bar on stderr, the answer streamed to stdout, plans
  shown and confirmed with a typed `yes`, tool calls approved with y/N.
- Elsewhere: plain lines on stderr for steps and notices, no bar, nothing asked (an apply
  needs `--yes`; a run that needs approval pauses).
- With `-o json`: steps, notices and progress as JSON lines on stderr, so stdout holds only
  the result document.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from afctl.console import Console
from afctl.errors import UsageError

MINIMUM_ITEMS = {"Validating": 200}
"""Fewer items than this draw no progress bar (a quick job would only flicker); 2 otherwise."""


class CliConsole(Console):
    def __init__(self, output: str = "text", *, yes: bool = False, stream: bool | None = None):
        self.output = output
        self.yes = yes
        self.workspace: Path | None = None
        """The workspace in use, for showing paths in plans relative to it."""
        self.streams = output == "text" and (sys.stdout.isatty() if stream is None else stream)
        self.asks = sys.stdin.isatty() and sys.stderr.isatty()
        self.printed: list[str] = []
        """The streamed text shown so far."""
        self._since_restart: list[str] = []
        self._bar: Any = None
        self._task: Any = None
        self._json_marks: dict[str, int] = {}

    # -- progress --------------------------------------------------------------------------

    def progress(self, done: int, total: int, label: str) -> None:
        if self.output == "json":
            self._progress_line(done, total, label)
            return
        if not sys.stderr.isatty() or total < MINIMUM_ITEMS.get(label, 2):
            return
        if self._bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            from afctl.cli.render import console

            self._bar = Progress(f"[bold]{label}", BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console(stderr=True),
                                 transient=True)  # fmt: skip
            self._bar.start()
            self._task = self._bar.add_task(label, total=total)
        if done % 50 == 0 or done == total or total < 1000:
            self._bar.update(self._task, completed=done)
        if done >= total:
            self._stop_bar()

    def _progress_line(self, done: int, total: int, label: str) -> None:
        """At most about twenty lines per job: each 5% and the last."""
        mark = done * 20 // max(total, 1)
        if mark > self._json_marks.get(label, -1) or done == total:
            self._json_marks[label] = mark
            self._json_line({"event": "progress", "label": label, "done": done, "total": total})

    def _stop_bar(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = self._task = None

    # -- streamed text ---------------------------------------------------------------------

    def text(self, piece: str) -> None:
        self.printed.append(piece)
        self._since_restart.append(piece)
        sys.stdout.write(piece)
        sys.stdout.flush()

    def restart_text(self) -> None:
        """Erase what was shown of the answer on a terminal (elsewhere, start a new line)."""
        shown = "".join(self._since_restart)
        self._since_restart = []
        if not shown:
            return
        if sys.stdout.isatty():
            import shutil

            width = max(shutil.get_terminal_size().columns, 1)
            rows = sum(max(1, -(-len(line) // width)) for line in shown.split("\n"))
            up = f"\033[{rows - 1}A" if rows > 1 else ""
            sys.stdout.write(f"\r{up}\033[J")  # back to where the answer began, clear below
        else:
            sys.stdout.write("\n")
        sys.stdout.flush()

    # -- steps and notices -----------------------------------------------------------------

    def step(self, value: Any) -> None:
        from afctl.eval.stress import StressStep

        if self.output == "json":
            data = value.to_dict() if hasattr(value, "to_dict") else str(value)
            self._json_line({"event": "step", "step": data})
        elif isinstance(value, StressStep):
            click.echo(f"  concurrency {value.concurrency}: {value.runs} runs, "
                       f"{value.throughput:.1f}/s", err=True)  # fmt: skip
        else:
            click.echo(f"  {value}", err=True)

    def notice(self, message: str) -> None:
        if self.output == "json":
            self._json_line({"event": "notice", "message": message})
        else:
            click.echo(message, err=True)

    def _json_line(self, data: dict[str, Any]) -> None:
        click.echo(json.dumps(data, ensure_ascii=False, default=str), err=True)

    # -- questions -------------------------------------------------------------------------

    def confirm(self, plan: Any, action: str, *, decided: bool = False) -> bool:
        """Show the plan, then ask on a terminal (or trust --yes, or a saved plan).

        Raises (once the files are read and the plan made, so a missing file or a stale plan
        is said first; nothing is written):
            UsageError: not on a terminal, and --yes not given.
        """
        from afctl.cli.render import console
        from afctl.cli.render.state import render_plan

        approved = decided or self.yes
        if not approved and not sys.stdin.isatty():
            raise UsageError(
                f"{action.lower()} asks for confirmation, and this is not a terminal",
                hint="pass --yes to apply without asking",
            )
        out = console()
        render_plan(out, plan, self.workspace)
        if approved:
            return True
        out.print()
        answer = click.prompt(
            f"{action} these changes to environment {plan.env}? Only 'yes' will be accepted",
            default="",
            show_default=False,
        )
        if answer.strip() != "yes":
            out.print(f"{action} cancelled: nothing was changed.", markup=False)
            return False
        return True

    async def approve(self, tool: str, arguments: dict[str, Any]) -> bool:
        import asyncio

        question = f"Allow {tool}({json.dumps(arguments, ensure_ascii=False)})?"
        return bool(await asyncio.to_thread(click.confirm, question, default=False, err=True))

    def close(self) -> None:
        self._stop_bar()

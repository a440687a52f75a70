"""How the engine reports while it works, and asks when it must: the `Console` interface.

The core reports through six events, and nothing else reaches the caller mid-call:

- `progress(done, total, label)`: items of a long job finished (files validated, cases run);
- `text(piece)` and `restart_text()`: a streamed answer, and its start-over when a retried
  model call answers differently (`streams` says whether the console wants answers streamed);
- `step(value)`: a stage of a long job began or ended (a stress step, a tuning candidate);
- `notice(message)`: something worth a line (a server listening, a step taken);
- `confirm(plan, action)`: the plan an apply, delete, rollback or install is about to make;
  True lets it go ahead (`decided`: the caller approved it already, as a saved plan is);
- `approve(tool, arguments)`: whether a person allows a tool call (`asks` says whether anyone
  can be asked; where no one can, a run that needs approval pauses instead).

This base class is the Python API's default: it reports nothing, lets every plan go ahead
(the caller asked for the apply) and asks no one. The CLI's console draws on a terminal,
prints plain lines elsewhere and JSON lines with `-o json` (`afctl.cli.console`).
"""

from __future__ import annotations

from typing import Any


class Console:
    streams = False
    """Whether answers are streamed to `text` as they are generated."""
    asks = False
    """Whether `approve` can ask a person."""

    def progress(self, done: int, total: int, label: str) -> None:
        """`done` of `total` items of the job `label` ("Validating", "Evaluating") finished."""

    def text(self, piece: str) -> None:
        """The next piece of a streamed answer."""

    def restart_text(self) -> None:
        """The streamed answer starts over: clear what `text` showed of it."""

    def step(self, value: Any) -> None:
        """A stage of a long job: a `StressStep` that ended, a tuning candidate (text)."""

    def notice(self, message: str) -> None:
        """A line for whoever watches."""

    def confirm(self, plan: Any, action: str, *, decided: bool = False) -> bool:
        """Whether the `plan` may be carried out (`action`: Apply, Delete, Roll back,
        Install, Upgrade, Uninstall). `decided`: it will be, whatever the answer."""
        return True

    async def approve(self, tool: str, arguments: dict[str, Any]) -> bool:
        """Whether a person allows calling `tool` with `arguments` (only asked when `asks`)."""
        return False

    def close(self) -> None:
        """The work is done: put away whatever the console still shows."""


class StreamToConsole:
    """A streamed answer's text callback, passing it (and its restarts) to a console."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def __call__(self, piece: str) -> None:
        self.console.text(piece)

    def restart(self) -> None:
        self.console.restart_text()

"""A workspace to serve, and `afctl serve` running on it (uvicorn on loopback, in a thread)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from afctl.context import Context
from afctl.server.app import serve
from afctl.server.core import ServeSettings
from afctl.testing import write_repo

TOOLS_PY = '''
import asyncio
from pathlib import Path


def note(text: str) -> str:
    """Echo a note.

    Args:
        text: The note.
    """
    return f"noted {text}"


async def wait(seconds: float) -> str:
    """Wait, or stop waiting once a file named `wake` is at the repository's root.

    Args:
        seconds: How long.
    """
    wake = Path(__file__).parent.parent / "wake"
    for _ in range(int(seconds * 20)):
        if wake.exists():
            return "woken"
        await asyncio.sleep(0.05)
    return "waited"


def refund(amount: int) -> str:
    """Refund an amount.

    Args:
        amount: In cents.
    """
    with open(Path(__file__).parent.parent / "refunds.log", "a") as log:
        log.write(f"{amount}\\n")
    return f"refunded {amount}"
'''


def _scripted(name: str, tool: str, arguments: str, reply: str) -> str:
    return (
        f"apiVersion: afctl/v1\nkind: Model\nmetadata: {{name: {name}}}\n"
        "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
        f"      - turn: 1\n        tool_calls: [{{name: {tool}, arguments: {arguments}}}]\n"
        f"      - after_tool: {tool}\n        reply: '{reply}'\n"
    )


def _agent(name: str, model: str, tools: str = "[]") -> str:
    return (
        f"apiVersion: afctl/v1\nkind: Agent\nmetadata: {{name: {name}}}\n"
        f"spec: {{model: {model}, instructions: Help., tools: {tools}}}\n"
    )


def _tool(name: str, extra: str = "") -> str:
    return (
        f"apiVersion: afctl/v1\nkind: Tool\nmetadata: {{name: {name}}}\n"
        f"spec: {{type: python, entrypoint: 'ops.tools:{name}'{extra}}}\n"
    )


FILES = {
    ".afctl/.gitignore": "*\n",
    "ops/__init__.py": "",
    "ops/tools.py": TOOLS_PY,
    "tools.yaml": "---\n".join(
        [
            _tool("note"),
            _tool("wait"),
            _tool("refund", ", approval: {when: 'args.amount > 100'}"),
        ]
    ),
    "models.yaml": "---\n".join(
        [
            "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: echo}\n"
            "spec: {provider: local, model: echo}\n",
            _scripted("noting", "note", "{text: hi}", "done: {{ tool_result }}"),
            _scripted("sleepy", "wait", "{seconds: 30}", "woke"),
            _scripted("cash", "refund", "{amount: 500}", "done: {{ tool_result }}"),
            # one turn, two calls: a refund returns at once, a wait until woken
            "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: two-calls}\n"
            "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
            "      - turn: 1\n        tool_calls: [{name: refund, arguments: {amount: 5}}, "
            "{name: wait, arguments: {seconds: 60}}]\n"
            "      - after_tool: wait\n        reply: 'done: {{ tool_result }}'\n",
        ]
    ),
    "agents.yaml": "---\n".join(
        [
            _agent("echo", "echo"),
            _agent("noter", "noting", "[note]"),
            _agent("sleeper", "sleepy", "[wait]"),
            _agent("cashier", "cash", "[refund]"),
            _agent("patient", "two-calls", "[refund, wait]"),
        ]
    ),
    "flows.yaml": (
        "apiVersion: afctl/v1\nkind: Workflow\nmetadata: {name: flow}\nspec:\n"
        "  inputs: {type: object, required: [ticket], properties: {ticket: {type: string}}}\n"
        "  steps:\n    - {id: log, tool: note, input: {text: '{{ inputs.ticket }}'}}\n"
        "  outputs: {said: '{{ steps.log.output }}'}\n"
        "---\n"
        "apiVersion: afctl/v1\nkind: Workflow\nmetadata: {name: slowflow}\nspec:\n"
        "  inputs: {type: object, properties: {seconds: {type: number}}}\n"
        "  steps:\n    - {id: first, tool: note, input: {text: one}}\n"
        "    - {id: nap, tool: wait, input: {seconds: '{{ inputs.seconds }}'}}\n"
        "  outputs: {said: '{{ steps.first.output }}'}\n"
    ),
}


def served_repo(root: Path) -> Path:
    """A workspace with agents and workflows applied, for a server to serve."""
    repo = write_repo(root, FILES)
    with Context(workspace=repo) as context:
        context.apply(str(repo))
    return repo


def make_key(repo: Path, role: str, env: str | None = None, **options: Any) -> str:
    with Context(workspace=repo, env=env) as context:
        return context.api_key_create(role, **options)[1]


class Running:
    """`afctl serve` on a free loopback port, in a thread with its own loop."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.url = ""
        self.server: Any = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()

            def ready(address: str, server: Any) -> None:
                self.url, self.server = address, server
                self._ready.set()

            await serve(self.settings, on_ready=ready, stop=self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:  # shown by __enter__
            self._error = exc
        finally:
            self._ready.set()

    def __enter__(self) -> Running:
        self._thread.start()
        self._ready.wait(30)
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)
        assert not self._thread.is_alive(), "the server did not stop"

    def __exit__(self, *_: object) -> None:
        self.stop()

    def client(self, key: str | None = None, **headers: str) -> httpx2.Client:
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        return httpx2.Client(base_url=self.url, headers=headers, timeout=60)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return served_repo(tmp_path)


@pytest.fixture
def running(repo: Path) -> Iterator[Running]:
    settings = ServeSettings(port=0, workspace=str(repo), grace_s=2.0)
    with Running(settings) as server:
        yield server


@pytest.fixture
def admin_key(repo: Path) -> str:
    return make_key(repo, "admin", name="root")

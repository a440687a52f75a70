"""`afctl.Context` works where an event loop already runs (a notebook, an async test, a
server): it used to fail with "asyncio.run() cannot be called from a running event loop"."""

from __future__ import annotations

import asyncio

import pytest

from afctl.context import Context
from afctl.errors import UsageError
from afctl.testing import write_repo

AGENT = "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: local/echo}\n"
SUITE = (
    "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\n"
    "spec: {target: {agent: a}, cases: [{input: hi, assert: [{type: contains, value: hi}]}]}\n"
)


def test_runs_evals_and_replays_inside_a_running_loop(tmp_path):
    repo = write_repo(tmp_path, {".afctl/.gitignore": "*\n", "a.yaml": AGENT, "s.yaml": SUITE})

    async def notebook_cell() -> tuple[str | None, bool, bool]:
        context = Context(workspace=repo)
        result = context.run("agent/a", "hello", paths=[str(repo)])
        (evaluated,) = context.evaluate([str(repo)])
        replayed = context.replay(result.run_id)
        return result.output, evaluated.passed, replayed.reproduced

    assert asyncio.run(notebook_cell()) == ("hello", True, True)


def test_errors_reach_the_caller_inside_a_running_loop(tmp_path):
    async def cell() -> None:
        Context(workspace=tmp_path).run("agent/nobody", "hi", paths=[str(tmp_path)])

    write_repo(tmp_path, {"a.yaml": AGENT})
    with pytest.raises(UsageError, match="agent/nobody"):
        asyncio.run(cell())

"""What a context's runs share for its lifetime: one SDK client per endpoint, one
connection per MCP server, closed when the context closes (sync, async, and in a loop)."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from afctl.context import AsyncContext, Context
from afctl.testing import write_repo
from tests.tools.test_mcp import SERVER

SERVED = (
    "apiVersion: afctl/v1\nkind: Model\nmetadata: {{name: main}}\n"
    "spec: {{provider: openai, model: m, base_url: '{url}/v1', api_key_env: TEST_KEY}}\n---\n"
    "apiVersion: afctl/v1\nkind: Agent\nmetadata: {{name: bot}}\n"
    "spec: {{model: main, instructions: Help.}}\n"
)


def mcp_repo(root: Path, pid_file: Path) -> Path:
    tool = (f"{{type: mcp, transport: stdio, command: {sys.executable!r}, args: [{SERVER!r}], "
            f"prefix: m_, env: {{MCP_PID_FILE: {str(pid_file)!r}}}}}")  # fmt: skip
    return write_repo(root, {
        ".afctl/.gitignore": "*\n",
        "all.yaml": (
            f"apiVersion: afctl/v1\nkind: Tool\nmetadata: {{name: calc}}\nspec: {tool}\n---\n"
            "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
            "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
            "      - turn: 1\n        tool_calls: [{name: m_add, arguments: {a: 2, b: 3}}]\n"
            "      - after_tool: m_add\n        reply: 'sum {{ tool_result }}'\n---\n"
            "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: helper}\n"
            "spec: {model: script, instructions: Help., tools: [calc]}\n"
        ),
    })  # fmt: skip


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stopped(pid: int) -> bool:
    for _ in range(50):
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def test_runs_of_a_context_share_one_sdk_client(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    repo = write_repo(tmp_path, {".afctl/.gitignore": "*\n",
                                 "a.yaml": SERVED.format(url=llm_server.url)})  # fmt: skip
    with Context(workspace=repo) as context:
        assert context.run("agent/bot", "one", paths=[str(repo)]).ok
        pool = context.services.runs.clients.providers_if_made()
        assert context.run("agent/bot", "two", paths=[str(repo)]).ok
        assert context.services.runs.clients.providers_if_made() is pool
        assert pool is not None and len(pool) == 1  # one client, built once, for both runs


def test_an_mcp_server_serves_every_run_of_a_context_and_stops_with_it(tmp_path):
    pid_file = tmp_path / "server.pid"
    repo = mcp_repo(tmp_path / "repo", pid_file)
    with Context(workspace=repo) as context:
        assert context.run("agent/helper", "go", paths=[str(repo)]).output == "sum 5"
        pid = int(pid_file.read_text())
        assert alive(pid)  # kept for the next run
        assert context.run("agent/helper", "again", paths=[str(repo)]).output == "sum 5"
        assert int(pid_file.read_text()) == pid  # not started again
    assert stopped(pid)


def test_a_dropped_context_stops_its_servers_when_the_call_returns(tmp_path):
    pid_file = tmp_path / "server.pid"
    repo = mcp_repo(tmp_path / "repo", pid_file)
    assert Context(workspace=repo).run("agent/helper", "go", paths=[str(repo)]).ok
    assert stopped(int(pid_file.read_text()))


def test_the_async_context_shares_on_the_callers_loop(tmp_path):
    pid_file = tmp_path / "server.pid"
    repo = mcp_repo(tmp_path / "repo", pid_file)

    async def main() -> tuple[int, int]:
        async with AsyncContext(workspace=repo) as context:
            first, second = await asyncio.gather(
                context.run("agent/helper", "go", paths=[str(repo)]),
                context.run("agent/helper", "go", paths=[str(repo)]),
            )
            assert first.ok and second.ok
            pid = int(pid_file.read_text())
            assert (await context.run("agent/helper", "go", paths=[str(repo)])).ok
            return pid, int(pid_file.read_text())

    before, after = asyncio.run(main())
    assert before == after and stopped(after)


@pytest.mark.parametrize("calls", [2])
def test_inside_a_running_loop_calls_share_too(tmp_path, calls):
    pid_file = tmp_path / "server.pid"
    repo = mcp_repo(tmp_path / "repo", pid_file)

    async def notebook() -> list[int]:
        pids = []
        with Context(workspace=repo) as context:  # sync calls from inside a loop
            for _ in range(calls):
                assert context.run("agent/helper", "go", paths=[str(repo)]).ok
                pids.append(int(pid_file.read_text()))
        return pids

    pids = asyncio.run(notebook())
    assert len(set(pids)) == 1 and stopped(pids[0])

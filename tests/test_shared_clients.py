"""What runs share: an AsyncContext's runs share one SDK client per endpoint and one
connection per MCP server for the context's life, closed with it; a sync Context's call (an
eval, a workflow) shares them among its runs, closed when the call returns."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

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


def test_runs_of_an_async_context_share_one_sdk_client(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    repo = write_repo(tmp_path, {".afctl/.gitignore": "*\n",
                                 "a.yaml": SERVED.format(url=llm_server.url)})  # fmt: skip

    async def main() -> None:
        async with AsyncContext(workspace=repo) as context:
            assert (await context.run("agent/bot", "one", paths=[str(repo)])).ok
            pool = context.services.runs.clients.providers_if_made()
            assert (await context.run("agent/bot", "two", paths=[str(repo)])).ok
            assert context.services.runs.clients.providers_if_made() is pool
            assert pool is not None and len(pool) == 1  # one client, built once, for both

    asyncio.run(main())


def test_a_sync_call_stops_its_servers_when_it_returns(tmp_path):
    pid_file = tmp_path / "server.pid"
    repo = mcp_repo(tmp_path / "repo", pid_file)
    with Context(workspace=repo) as context:
        assert context.run("agent/helper", "go", paths=[str(repo)]).output == "sum 5"
        first = int(pid_file.read_text())
        assert stopped(first)  # the call's loop is gone, and its server with it
        assert context.run("agent/helper", "again", paths=[str(repo)]).output == "sum 5"
        assert int(pid_file.read_text()) != first and stopped(int(pid_file.read_text()))


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


def test_inside_a_running_loop_a_sync_call_works_and_cleans_up(tmp_path):
    pid_file = tmp_path / "server.pid"
    repo = mcp_repo(tmp_path / "repo", pid_file)

    async def notebook() -> int:
        with Context(workspace=repo) as context:  # a sync call from inside a loop
            assert context.run("agent/helper", "go", paths=[str(repo)]).ok
            return int(pid_file.read_text())

    assert stopped(asyncio.run(notebook()))

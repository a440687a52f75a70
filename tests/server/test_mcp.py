"""The official mcp client against afctl: `/mcp` of afctl serve (streamable HTTP, with keys
and roles) and `afctl mcp serve` (stdio)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import httpx2
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from afctl.context import Context
from tests.server.conftest import make_key


async def _over_http(url: str, key: str, work: Any) -> Any:
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {key}"}, timeout=30) as client,
        streamable_http_client(url + "/mcp", http_client=client) as streams,
        ClientSession(streams[0], streams[1]) as session,
    ):
        await session.initialize()
        return await work(session)


async def _listed_and_called(session: ClientSession) -> Any:
    tools = (await session.list_tools()).tools
    answer = await session.call_tool("agent_noter", {"input": "note please"})
    flow = await session.call_tool("workflow_flow", {"ticket": "T-9"})
    bad = await session.call_tool("workflow_flow", {"nope": 1})
    ghost = await session.call_tool("agent_ghost", {"input": "x"})
    return tools, answer, flow, bad, ghost


def test_the_mcp_client_lists_and_calls_the_applied_agents(running, repo):
    key = make_key(repo, "runner")
    tools, answer, flow, bad, ghost = asyncio.run(_over_http(running.url, key,
                                                             _listed_and_called))  # fmt: skip
    by_name = {tool.name: tool for tool in tools}
    assert sorted(by_name) == ["agent_cashier", "agent_echo", "agent_noter", "agent_patient", "agent_sleeper",
                               "workflow_flow", "workflow_slowflow"]  # fmt: skip
    assert by_name["agent_noter"].input_schema["required"] == ["input"]
    assert by_name["workflow_flow"].input_schema["required"] == ["ticket"]
    assert not answer.is_error and answer.content[0].text == "done: noted hi"
    assert not flow.is_error and flow.structured_content == {"said": "noted T-9"}
    assert bad.is_error and "ticket" in bad.content[0].text
    assert ghost.is_error
    with Context(workspace=repo) as context:
        assert [r.target for r in context.runs(limit=5)][-1] == "agent/noter"  # logged
    running.stop()  # audit records are written in batches; a stopping server writes the rest
    audit = [r.action for r in Context(workspace=repo).audit_records()]
    assert audit.count("mcp.call") == 2


def test_mcp_over_http_needs_a_key_and_running_needs_the_runner_role(running, repo):
    viewer = make_key(repo, "viewer")

    async def call(session: ClientSession) -> Any:
        listed = await session.list_tools()
        return listed, await session.call_tool("agent_echo", {"input": "hi"})

    listed, refused = asyncio.run(_over_http(running.url, viewer, call))
    assert listed.tools and refused.is_error and "runner" in refused.content[0].text
    answer = httpx2.post(running.url + "/mcp", json={"jsonrpc": "2.0", "id": 1,
                                                     "method": "tools/list"})  # fmt: skip
    assert answer.status_code == 401


def test_afctl_mcp_serve_speaks_stdio(repo: Path):
    parameters = StdioServerParameters(command=str(Path(sys.executable).parent / "afctl"),
                                       args=["mcp", "serve"], cwd=str(repo))  # fmt: skip

    async def session_work() -> Any:
        async with (
            stdio_client(parameters) as streams,
            ClientSession(streams[0], streams[1]) as session,
        ):
            await session.initialize()
            tools = (await session.list_tools()).tools
            return tools, await session.call_tool("agent_echo", {"input": "over stdio"})

    tools, answer = asyncio.run(session_work())
    assert "agent_echo" in {t.name for t in tools}
    assert answer.content[0].text == "over stdio"

"""MCP tools against a real MCP server process (tests/mcp_server.py, written with the official
SDK), through the real client: stdio and streamable HTTP, allow-lists, failures, clean-up."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.testing import write_repo

SERVER = str(Path(__file__).resolve().parents[1] / "mcp_server.py")


def repo_with(tmp_path: Path, tool_spec: str, rules: str, tools: str = "[calc]") -> Path:
    body = textwrap.indent(textwrap.dedent(rules).strip(), "      ")
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "tool.yaml": f"apiVersion: afctl/v1\nkind: Tool\nmetadata: {{name: calc}}\nspec: {tool_spec}\n",
            "model.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
                f"spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n{body}\n"
            ),
            "agent.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: helper}\n"
                f"spec: {{model: script, instructions: Help., tools: {tools}}}\n"
            ),
        },
    )  # fmt: skip


def stdio(extra: str = "") -> str:
    return (
        f"{{type: mcp, transport: stdio, command: {sys.executable!r}, args: [{SERVER!r}], "
        f"prefix: m_{extra}}}"
    )


def run(repo: Path, text: str = "go"):  # type: ignore[no-untyped-def]
    return Context(workspace=repo).run("agent/helper", text, paths=[str(repo)])


def events(repo: Path, run_id: str):  # type: ignore[no-untyped-def]
    with Context(workspace=repo).prompt_log() as log:
        return list(log.events(run_id))


def test_an_agent_calls_a_tool_of_an_mcp_server_over_stdio(tmp_path, monkeypatch):
    pid_file = tmp_path / "server.pid"
    monkeypatch.setenv("MCP_PID_FILE", "not passed on: the server gets only its `env`")
    repo = repo_with(
        tmp_path / "repo",
        stdio(f", env: {{MCP_PID_FILE: {str(pid_file)!r}}}"),
        """
        - turn: 1
          tool_calls: [{name: m_add, arguments: {a: 2, b: 3}}]
        - after_tool: m_add
          reply: "2 + 3 = {{ tool_result }}"
        """,
    )
    result = run(repo)
    assert result.ok, result.error
    assert result.output == "2 + 3 = 5"
    offered = events(repo, result.run_id)[0].payload["request"]["tools"]
    assert sorted(t["name"] for t in offered) == ["m_add", "m_die", "m_fail", "m_shout", "m_token"]
    add = next(t for t in offered if t["name"] == "m_add")
    assert add["description"] == "Add two numbers."
    assert set(add["parameters"]["properties"]) == {"a", "b"}
    pid = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # the server was stopped with the run
        for _ in range(50):
            os.kill(pid, 0)
            time.sleep(0.1)


def test_only_the_allow_listed_tools_are_offered(tmp_path):
    repo = repo_with(tmp_path, stdio(", tools: [shout]"), "- turn: 1\n  reply: hi")
    result = run(repo)
    offered = events(repo, result.run_id)[0].payload["request"]["tools"]
    assert [t["name"] for t in offered] == ["m_shout"]
    repo = repo_with(tmp_path, stdio(", tools: [shout, nothing]"), "- turn: 1\n  reply: hi")
    result = run(repo)
    assert result.status == "failed" and "has no tool nothing" in (result.error or "")


def test_tool_errors_and_a_dying_server_go_back_to_the_model(tmp_path):
    repo = repo_with(
        tmp_path,
        stdio(", timeout_s: 20"),
        """
        - turn: 1
          tool_calls: [{name: m_fail, arguments: {reason: nope}}]
        - turn: 2
          tool_calls: [{name: m_die, arguments: {}}]
        - turn: 3
          reply: "saw: {{ tool_result }}"
        """,
    )
    started = time.monotonic()
    result = run(repo)
    assert result.ok, result.error
    assert time.monotonic() - started < 20  # no hang on the dead server
    calls = [e for e in events(repo, result.run_id) if e.type == "tool_call"]
    assert [c.status for c in calls] == ["error", "error"]
    assert "did not answer" in calls[1].payload["result"]
    assert result.output is not None and "did not answer" in result.output


def test_a_server_that_does_not_start_fails_the_run_clearly(tmp_path):
    script = tmp_path / "broken.py"
    script.write_text("import sys\nprint('missing config file', file=sys.stderr)\nsys.exit(2)\n")
    spec = f"{{type: mcp, transport: stdio, command: {sys.executable!r}, args: [{str(script)!r}]}}"
    repo = repo_with(tmp_path / "repo", spec, "- turn: 1\n  reply: hi")
    result = run(repo)
    assert result.status == "failed" and result.error_type == "config"
    assert "MCP server calc did not start" in (result.error or "")
    assert "missing config file" in (result.error or "")
    spec = "{type: mcp, transport: stdio, command: no-such-program-afctl}"
    result = run(repo_with(tmp_path / "repo2", spec, "- turn: 1\n  reply: hi"))
    assert result.status == "failed" and "did not start" in (result.error or "")


def test_server_env_takes_secrets_that_stay_out_of_the_log(tmp_path, monkeypatch):
    monkeypatch.setenv("CALC_TOKEN", "tok-very-secret-value-123")
    repo = repo_with(
        tmp_path,
        stdio(", env: {MCP_TOKEN: '${env:CALC_TOKEN}'}"),
        """
        - turn: 1
          tool_calls: [{name: m_token, arguments: {}}]
        - after_tool: m_token
          reply: "token is {{ tool_result }}"
        """,
    )
    result = run(repo)
    # the server got the secret (it echoed it back), and nothing afctl returns or logs holds it
    assert result.ok and result.output == "token is [REDACTED]"
    data = b"".join(p.read_bytes() for p in (repo / ".afctl").glob("logs.db*"))
    assert b"tok-very-secret-value-123" not in data


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_streamable_http(tmp_path):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, SERVER, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MCP server did not come up"
                time.sleep(0.1)
        repo = repo_with(
            tmp_path,
            f"{{type: mcp, transport: http, url: 'http://127.0.0.1:{port}/mcp', tools: [shout]}}",
            """
            - turn: 1
              tool_calls: [{name: shout, arguments: {text: quiet please}}]
            - after_tool: shout
              reply: "{{ tool_result }}"
            """,
        )
        result = run(repo)
        assert result.ok, result.error
        assert result.output == "QUIET PLEASE"
    finally:
        server.terminate()
        server.wait(timeout=10)


def starts_of(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def counted(tmp_path: Path, rules: str) -> tuple[Path, Path]:
    log = tmp_path / "starts.log"
    repo = repo_with(tmp_path / "repo", stdio(f", env: {{MCP_START_LOG: {str(log)!r}}}"), rules)
    return repo, log


CALLS_ADD = """
- turn: 1
  tool_calls: [{name: m_add, arguments: {a: 2, b: 3}}]
- after_tool: m_add
  reply: "2 + 3 = {{ tool_result }}"
"""


def test_a_server_starts_only_when_one_of_its_tools_is_called(tmp_path):
    """Issue 15 #2: its tool list is remembered; a run that does not call it starts nothing."""
    repo, log = counted(tmp_path, CALLS_ADD)
    assert run(repo).ok and starts_of(log) == 1  # the first run learns the list and calls
    write_repo(repo, {"model.yaml": (repo / "model.yaml").read_text().replace(
        "tool_calls: [{name: m_add, arguments: {a: 2, b: 3}}]", "reply: no tools today")})  # fmt: skip
    quiet = run(repo)
    assert quiet.ok and starts_of(log) == 1  # offered its tools, started nothing
    offered = events(repo, quiet.run_id)[0].payload["request"]["tools"]
    assert "m_add" in [t["name"] for t in offered]


def test_offline_replay_starts_no_server(tmp_path):
    """Issue 15 #1: recorded results are served; nothing is spawned, even with the tool list
    forgotten and the server gone."""
    repo, log = counted(tmp_path, CALLS_ADD)
    result = run(repo)
    assert result.ok and starts_of(log) == 1
    (repo / ".afctl" / "mcp-tools.json").unlink()
    report = Context(workspace=repo).replay(result.run_id)
    assert report.reproduced, report.divergence
    assert starts_of(log) == 1


def test_the_cases_of_an_eval_share_one_server(tmp_path):
    repo, log = counted(tmp_path, CALLS_ADD)
    write_repo(repo, {"suite.yaml": (
        "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\nspec:\n"
        "  target: {agent: helper}\n  concurrency: 4\n  cases:\n"
        + "".join(f"    - {{id: c{i}, input: go {i}, assert: [{{type: contains, value: '= 5'}}]}}\n"
                  for i in range(8))
    )})  # fmt: skip
    (result,) = Context(workspace=repo).evaluate([str(repo)], cache=False)
    assert result.passed and starts_of(log) == 1


def test_the_transport_follows_from_command_or_url(tmp_path):
    """Issue 15: `transport:` is optional; `command` means stdio."""
    spec = f"{{type: mcp, command: {sys.executable!r}, args: [{SERVER!r}], prefix: m_}}"
    repo = repo_with(tmp_path, spec, CALLS_ADD)
    result = run(repo)
    assert result.ok and result.output == "2 + 3 = 5"

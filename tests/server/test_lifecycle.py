"""`afctl serve` as a process: SIGTERM drains (runs finish within the grace period, or are
interrupted), and a server killed with kill -9 leaves its runs interrupted and resumable."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx2

from tests.server.conftest import make_key
from tests.signals import as_from_a_shell

AFCTL = str(Path(sys.executable).parent / "afctl")


def start(repo: Path, *options: str) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen([AFCTL, "serve", "--port", "0", *options], cwd=repo,
                              stderr=subprocess.PIPE, text=True,
                              preexec_fn=as_from_a_shell)  # fmt: skip
    assert server.stderr is not None
    first = server.stderr.readline()
    assert "listening on" in first, first + server.stderr.read()
    return server, first.split("listening on ", 1)[1].split(" ")[0]


def status_of(client: httpx2.Client, run_id: str) -> str:
    return str(client.get(f"/v1/runs/{run_id}").json().get("status"))


def until(check: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_sigterm_lets_short_runs_finish_and_interrupts_long_ones(repo):
    key = make_key(repo, "runner")
    server, url = start(repo, "--grace", "2s")
    try:
        with httpx2.Client(base_url=url, headers={"authorization": f"Bearer {key}"}) as client:
            short = client.post(
                "/v1/runs",
                json={"target": "workflow/slowflow", "input": {"seconds": 0.5}, "background": True},
            ).json()["run_id"]
            long = client.post(
                "/v1/runs", json={"target": "agent/sleeper", "input": "x", "background": True}
            ).json()["run_id"]
            until(lambda: status_of(client, long) == "running")
            began = time.monotonic()
            server.send_signal(signal.SIGTERM)
            assert server.wait(timeout=30) == 0
            assert time.monotonic() - began < 15
    finally:
        if server.poll() is None:
            server.kill()
    rest = server.stderr.read() if server.stderr else ""
    assert "Traceback" not in rest and "afctl serve stopped" in rest
    server, url = start(repo)
    try:
        with httpx2.Client(base_url=url, headers={"authorization": f"Bearer {key}"}) as client:
            assert status_of(client, short) == "succeeded"
            assert status_of(client, long) == "interrupted"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def killed_then_resumed(repo: Path, body: dict[str, Any],
                        underway: Any) -> tuple[httpx2.Client, str, dict[str, Any], Any]:  # fmt: skip
    """Start `body` as a background run, kill -9 the server once `underway(events)` holds,
    start it again, wake the run's tools and resume it over the API: (a client of the new
    server, the run id, the resumed run's result, the new server)."""
    key = make_key(repo, "operator")
    headers = {"authorization": f"Bearer {key}"}
    server, url = start(repo)
    try:
        with httpx2.Client(base_url=url, headers=headers) as client:
            run_id = client.post("/v1/runs", json={**body, "background": True}).json()["run_id"]
            until(lambda: underway(client.get(f"/v1/runs/{run_id}").json()["events"]))
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
    server, url = start(repo)
    client = httpx2.Client(base_url=url, headers=headers, timeout=60)
    assert status_of(client, run_id) == "interrupted"
    (repo / "wake").write_text("")
    resumed = client.post(f"/v1/runs/{run_id}/resume", json={})
    assert resumed.status_code == 200, resumed.text
    return client, run_id, resumed.json(), server


def test_a_server_killed_mid_run_leaves_it_interrupted_and_resumable(repo):
    def napping(events: list[dict[str, Any]]) -> bool:
        return any(e["type"] == "step" and e["payload"]["id"] == "first" for e in events)

    body = {"target": "workflow/slowflow", "input": {"seconds": 60}}
    client, run_id, result, server = killed_then_resumed(repo, body, napping)
    try:
        assert result["run_id"] == run_id and result["status"] == "succeeded"
        assert result["resumed"] == ["first"] and result["outputs"] == {"said": "noted one"}
        assert status_of(client, run_id) == "succeeded"
    finally:
        client.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_an_agent_run_of_a_server_killed_mid_call_resumes_over_the_api(repo):
    def refunded(events: list[dict[str, Any]]) -> bool:
        return any(e["type"] == "tool_call" and e["tool"] == "refund" for e in events)

    body = {"target": "agent/patient", "input": "go"}
    client, run_id, result, server = killed_then_resumed(repo, body, refunded)
    try:
        assert result["run_id"] == run_id and result["status"] == "succeeded"
        assert result["output"] == "done: woken" and result["tool_calls"] == 2
        assert (repo / "refunds.log").read_text() == "5\n"  # made once, before the kill
        shown = client.get(f"/v1/runs/{run_id}").json()
        assert shown["status"] == "succeeded"
        tools = [e["tool"] for e in shown["events"] if e["type"] == "tool_call"]
        assert tools == ["refund", "wait"]
        again = client.post(f"/v1/runs/{run_id}/resume", json={})
        assert again.status_code == 409 and "only an interrupted run" in again.text
    finally:
        client.close()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)

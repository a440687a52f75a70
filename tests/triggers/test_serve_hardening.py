"""`afctl serve` against hostile clients (issue 14 #12): lengths and signatures are checked
before a body is read, signed requests cannot be replayed, connections are capped and time
out, /metrics is not open to the network, and no request prints a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from afctl.server.exposure import exposure_warnings, metrics_denied
from afctl.testing import invoke
from afctl.triggers.webhook import sign, signed_headers
from tests.signals import as_from_a_shell
from tests.triggers.test_triggers import repo_with, request

SECRET = "hook-secret-value-123"
TRIGGERS = (
    "    - {type: webhook, path: /hooks/tickets, secret: '${env:HOOK_SECRET}', "
    "input: {ticket: '{{ event.body.id }}'}}\n"
    "    - {type: webhook, path: /hooks/github, secret: '${env:HOOK_SECRET}', signature: github, "
    "input: {ticket: '{{ event.body.id }}'}}\n"
    "    - {type: webhook, path: /hooks/open}\n"
)


@pytest.fixture
def served(tmp_path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    repo = repo_with(tmp_path, TRIGGERS)
    assert invoke(["apply", "-f", ".", "--yes"], cwd=repo).exit_code == 0
    afctl = Path(sys.executable).parent / "afctl"
    server = subprocess.Popen(
        [str(afctl), "serve", "--port", "0", "--insecure-no-auth"], cwd=repo,
        env={**os.environ, "HOOK_SECRET": SECRET}, stderr=subprocess.PIPE, text=True,
        preexec_fn=as_from_a_shell,
    )  # fmt: skip
    assert server.stderr is not None
    first = server.stderr.readline()
    url = first.split("listening on ", 1)[1].split(" ")[0]
    try:
        yield url, server
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        rest = server.stderr.read()
        assert "Traceback" not in rest and SECRET not in rest


def raw(url: str, head: bytes, body: bytes = b"", timeout: float = 10.0) -> bytes:
    """Send bytes as they are (no client fixes them up); what the server answered."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as connection:
        connection.sendall(head + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
        return answer


def post_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: x", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Length": "-1"}, b"400"),
        ({"Content-Length": "abc"}, b"400"),
        ({}, b"411"),
        ({"Transfer-Encoding": "chunked"}, b"411"),
        ({"Content-Length": "300000000"}, b"413"),
        ({"Content-Length": "900000"}, b"401"),  # unsigned: refused before the body is read
    ],
)
def test_lengths_and_signatures_are_checked_before_the_body_is_read(served, headers, status):
    url, _ = served
    answer = raw(url, post_head("/hooks/tickets", headers), b"x" * 1000)
    assert answer.split(b" ", 2)[1] == status, answer[:200]
    assert b"Traceback" not in answer


def test_a_signed_request_is_accepted_once_and_an_old_one_never(served):
    url, _ = served
    body = json.dumps({"id": "T-7"}).encode()
    headers = signed_headers(SECRET, body)
    assert request(url + "/hooks/tickets", body, headers)[0] == 202
    status, text = request(url + "/hooks/tickets", body, headers)
    assert status == 409 and "delivered already" in text
    old = signed_headers(SECRET, body, int(time.time()) - 3600)
    status, text = request(url + "/hooks/tickets", body, old)
    assert status == 401 and "timestamp" in text


def test_github_deliveries_are_accepted_once(served):
    url, _ = served
    body = json.dumps({"id": "T-8"}).encode()
    headers = {"X-Hub-Signature-256": sign(SECRET, body), "X-GitHub-Delivery": "d-42"}
    assert request(url + "/hooks/github", body, headers)[0] == 202
    assert request(url + "/hooks/github", body, headers)[0] == 409
    assert (
        request(url + "/hooks/github", body, {"X-Hub-Signature-256": sign(SECRET, body)})[0] == 401
    )


@pytest.mark.parametrize(
    ("body", "status"), [(b"[" * 200_000, 400), (b"{not json", 400), (b"[1]", 422)]
)
def test_hostile_bodies_get_a_clear_status(served, body, status):
    url, _ = served
    got, text = request(url + "/hooks/open", body, {"Content-Type": "application/json"})
    assert got == status and json.loads(text)["detail"]


def test_idle_connections_are_capped_and_time_out(served):
    url, server = served
    host, port = url.removeprefix("http://").split(":")
    idle = [socket.create_connection((host, int(port))) for _ in range(200)]
    try:
        status = request(url + "/healthz")[0]  # answered at once: 200, or 503 when full
        assert status in (200, 503)
        threads = int(
            next(line for line in Path(f"/proc/{server.pid}/status").read_text().splitlines()
                 if line.startswith("Threads:")).split()[1]
        )  # fmt: skip
        assert threads < 16  # connections are served on the event loop, not a thread each
    finally:
        for connection in idle:
            connection.close()
    deadline = time.monotonic() + 30
    while request(url + "/healthz")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_metrics_need_a_token_off_this_machine(monkeypatch):
    assert metrics_denied(None, None, "127.0.0.1") is None
    refused = metrics_denied(None, None, "10.0.0.7")
    assert refused is not None and refused.status == 403
    assert metrics_denied("t0ken", "Bearer t0ken", "10.0.0.7") is None
    wrong = metrics_denied("t0ken", "Bearer nope", "127.0.0.1")
    assert wrong is not None and wrong.status == 401


def test_listening_beyond_this_machine_is_said_out_loud(monkeypatch):
    from afctl.triggers.definitions import Trigger

    monkeypatch.delenv("AFCTL_METRICS_TOKEN", raising=False)
    hooks = [Trigger("w", 0, "webhook", {"path": "/open"}),
             Trigger("w", 1, "webhook", {"path": "/signed", "secret": "${env:S}"})]  # fmt: skip
    assert exposure_warnings("127.0.0.1", hooks) == []
    warned = " ".join(exposure_warnings("0.0.0.0", hooks))
    assert "other machines can reach" in warned and "/open" in warned and "/signed" not in warned
    assert "AFCTL_METRICS_TOKEN" in warned

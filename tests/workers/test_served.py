"""`afctl serve --executor celery`: background runs and triggered workflows are queued for
`afctl worker`s; a worker killed with kill -9 mid-run has its run resumed by another, and the
API reports the run once, with its events streamed from the log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from afctl.server.core import ServeSettings
from afctl.testing import write_repo
from tests.server.conftest import FILES, Running
from tests.workers.cluster import cluster_on

HOOKED = (
    "apiVersion: afctl/v1\nkind: Workflow\nmetadata: {name: hooked}\nspec:\n"
    "  inputs: {type: object, required: [ticket], properties: {ticket: {type: string}}}\n"
    "  steps:\n    - {id: log, tool: note, input: {text: '{{ inputs.ticket }}'}}\n"
    "  outputs: {said: '{{ steps.log.output }}'}\n"
    "  triggers:\n    - {type: webhook, path: /hooks/open, input: {ticket: '{{ event.body.id }}'}}\n"
)


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, broker_url: str, monkeypatch: Any) -> Any:
    yield from cluster_on(
        write_repo(tmp_path, {**FILES, "hooked.yaml": HOOKED}),
        postgres_url,
        broker_url,
        monkeypatch,
    )


def served(repo: Path) -> Running:
    return Running(ServeSettings(port=0, workspace=str(repo), insecure_no_auth=True,
                                 executor="celery"))  # fmt: skip


def until(check: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return found


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) of a server-sent events body."""
    found = []
    for block in text.split("\r\n\r\n" if "\r\n" in text else "\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


def test_a_background_run_survives_its_worker_being_killed_and_is_reported_once(cluster):
    cluster.start("w1", concurrency=4)
    cluster.start("w2", concurrency=4)
    repo = cluster.repo
    with served(repo) as server, server.client() as client:
        started = client.post("/v1/runs", json={"target": "agent/patient", "input": "go",
                                                "background": True})  # fmt: skip
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]

        def refunded() -> dict[str, Any] | None:
            shown = client.get(f"/v1/runs/{run_id}").json()
            calls = [e["tool"] for e in shown.get("events", []) if e["type"] == "tool_call"]
            return shown if calls == ["refund"] and shown["status"] == "running" else None

        first = until(refunded)["worker"]  # the refund is made and recorded; wait is going
        assert first in ("w1", "w2")
        cluster.kill(first)
        (repo / "wake").write_text("")
        until(lambda: client.get(f"/v1/runs/{run_id}").json()["status"] == "succeeded", 90)
        with client.stream("GET", f"/v1/runs/{run_id}/events") as stream:
            events = sse(stream.read().decode())
        results = [data for kind, data in events if kind == "result"]
        assert len(results) == 1  # the stream reports the run's end once
        (result,) = results
        assert result["run_id"] == run_id and result["status"] == "succeeded"
        assert result["output"] == "done: woken"
        shown = client.get(f"/v1/runs/{run_id}").json()
        listed = [r["id"] for r in client.get("/v1/runs", params={"limit": 100}).json()]
    assert (repo / "refunds.log").read_text() == "5\n"  # not made again by the second worker
    assert shown["status"] == "succeeded" and shown["worker"] == ({"w1", "w2"} - {first}).pop()
    assert [e["tool"] for e in shown["events"] if e["type"] == "tool_call"] == ["refund", "wait"]
    assert listed.count(run_id) == 1
    kinds = [kind for kind, _ in events]
    assert kinds.count("tool_result") == 2 and kinds[-1] == "result"


def test_queued_runs_answer_like_local_ones(cluster):
    cluster.start("w1", concurrency=4)
    with served(cluster.repo) as server, server.client() as client:
        # a workflow's inputs are checked before anything is queued
        bad = client.post("/v1/runs", json={"target": "workflow/flow", "input": {},
                                            "background": True})  # fmt: skip
        assert bad.status_code == 400 and "does not match its schema" in bad.json()["detail"]
        flow = client.post("/v1/runs", json={"target": "workflow/flow", "input": {"ticket": "7"},
                                             "background": True}).json()  # fmt: skip
        hook = client.post("/hooks/open", json={"id": "42"})
        assert hook.status_code == 202, hook.text
        hooked = hook.json()["run_id"]
        for run_id in (flow["run_id"], hooked):
            until(lambda r=run_id: client.get(f"/v1/runs/{r}").json()["status"] == "succeeded")
        shown = client.get(f"/v1/runs/{hooked}").json()
        assert shown["worker"] == "w1" and json.loads(shown["output"]) == {"said": "noted 42"}
        # an interactive run (not in the background) runs in the server, as before
        here = client.post("/v1/runs", json={"target": "agent/noter", "input": "hi"}).json()
        assert here["status"] == "succeeded"
        assert client.get(f"/v1/runs/{here['run_id']}").json()["worker"] is None


def test_cancelling_a_queued_run_stops_it_on_its_worker(cluster):
    cluster.start("w1", concurrency=2)
    with served(cluster.repo) as server, server.client() as client:
        run_id = client.post("/v1/runs", json={"target": "agent/sleeper", "input": "x",
                                               "background": True}).json()["run_id"]  # fmt: skip
        until(lambda: client.get(f"/v1/runs/{run_id}").json()["status"] == "running")
        began = time.monotonic()
        cancelled = client.post(f"/v1/runs/{run_id}/cancel")
        assert cancelled.status_code == 202, cancelled.text
        until(lambda: client.get(f"/v1/runs/{run_id}").json()["status"] == "interrupted", 20)
        with client.stream("GET", f"/v1/runs/{run_id}/events") as stream:
            events = sse(stream.read().decode())
        assert time.monotonic() - began < 20  # the wait tool would take 30 s
        assert events[-1][0] == "result" and events[-1][1]["status"] == "interrupted"
        assert client.get(f"/v1/runs/{run_id}").json()["status"] == "interrupted"
        again = client.post(f"/v1/runs/{run_id}/cancel")
        assert again.status_code == 409 and "not running on this server or a worker" in again.text
        # the worker is free again
        other = client.post("/v1/runs", json={"target": "agent/noter", "input": "hi",
                                              "background": True}).json()["run_id"]  # fmt: skip
        until(lambda: client.get(f"/v1/runs/{other}").json()["status"] == "succeeded")

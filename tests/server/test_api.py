"""The REST API of `afctl serve` as a client sees it: runs started and waited for or left in
the background, followed as server-sent events, cancelled, approved; resources read and
changed; errors as problem+json; limits; the audit log; the OpenAPI document."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx2

from afctl.context import Context
from afctl.server.core import ServeSettings
from afctl.server.limits import Limits
from afctl.testing import invoke
from tests.server.conftest import Running, make_key

PROBLEM = "application/problem+json"


def sse(response: httpx2.Response) -> list[tuple[str, str, dict[str, Any]]]:
    """(id, event, data) of each event of a server-sent event stream (comments skipped)."""
    events, fields = [], {}
    for line in response.iter_lines():
        if not line:
            if "event" in fields:
                events.append((fields.get("id", ""), fields["event"], json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return events


def wait_status(client: httpx2.Client, run_id: str, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        run = client.get(f"/v1/runs/{run_id}").json()
        if run.get("status") == wanted:
            return run
        assert time.monotonic() < deadline, run
        time.sleep(0.05)


def test_a_run_is_waited_for_and_recorded(running, admin_key):
    with running.client(admin_key) as client:
        answer = client.post("/v1/runs", json={"target": "agent/noter", "input": "note it"})
        assert answer.status_code == 200, answer.text
        result = answer.json()
        assert result["status"] == "succeeded" and result["output"] == "done: noted hi"
        assert answer.headers["location"] == f"/v1/runs/{result['run_id']}"
        shown = client.get(f"/v1/runs/{result['run_id']}").json()
        assert [e["type"] for e in shown["events"]].count("tool_call") == 1
        assert shown["input"] == "note it"
        listed = client.get("/v1/runs", params={"agent": "noter"}).json()
        assert [r["id"] for r in listed] == [result["run_id"]]
        flow = client.post("/v1/runs", json={"target": "workflow/flow", "input": {"ticket": "T"}})
        assert flow.status_code == 200 and flow.json()["outputs"] == {"said": "noted T"}


def test_a_background_run_streams_its_events_and_a_reconnect_gets_what_it_missed(
    running, admin_key
):
    with running.client(admin_key) as client:
        started = client.post("/v1/runs", json={"target": "agent/noter", "input": "x",
                                                "background": True})  # fmt: skip
        assert started.status_code == 202
        run_id = started.json()["run_id"]
        with client.stream("GET", f"/v1/runs/{run_id}/events") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = sse(response)
        kinds = [kind for _, kind, _ in events]
        assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "result"
        assert "text" in kinds
        assert events[0][2]["name"] == "note" and events[1][2]["result"] == "noted hi"
        assert "".join(d["delta"] for _, k, d in events if k == "text") == "done: noted hi"
        assert [int(i) for i, _, _ in events] == list(range(1, len(events) + 1))
        headers = {"last-event-id": events[1][0]}
        with client.stream("GET", f"/v1/runs/{run_id}/events", headers=headers) as response:
            again = sse(response)
        assert again == events[2:]


def test_a_workflow_run_streams_its_steps(running, admin_key):
    with running.client(admin_key) as client:
        started = client.post(
            "/v1/runs",
            json={"target": "workflow/flow", "input": {"ticket": "T-3"}, "background": True},
        )
        with client.stream("GET", f"/v1/runs/{started.json()['run_id']}/events") as response:
            events = sse(response)
    assert [kind for _, kind, _ in events] == ["step", "result"]
    assert events[0][2]["id"] == "log" and events[0][2]["output"] == "noted T-3"
    assert events[1][2]["outputs"] == {"said": "noted T-3"}


def test_the_same_idempotency_key_returns_the_same_run(running, admin_key):
    body = {"target": "agent/noter", "input": "once"}
    with running.client(admin_key) as client:
        first = client.post("/v1/runs", json=body, headers={"idempotency-key": "k-1"})
        second = client.post("/v1/runs", json=body, headers={"idempotency-key": "k-1"})
        assert first.json()["run_id"] == second.json()["run_id"]
        assert second.json()["status"] == "succeeded"
        other = client.post("/v1/runs", json={**body, "input": "twice"},
                            headers={"idempotency-key": "k-1"})  # fmt: skip
        assert other.status_code == 409 and other.headers["content-type"] == PROBLEM
        assert len(client.get("/v1/runs", params={"agent": "noter"}).json()) == 1


def test_a_run_is_cancelled_and_a_paused_one_approved(running, repo, admin_key):
    with running.client(admin_key) as client:
        started = client.post("/v1/runs", json={"target": "agent/sleeper", "input": "nap",
                                                "background": True})  # fmt: skip
        run_id = started.json()["run_id"]
        wait_status(client, run_id, "running")
        assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 202
        assert wait_status(client, run_id, "interrupted")["error_type"] == "interrupted"
        again = client.post(f"/v1/runs/{run_id}/cancel")
        assert again.status_code == 409 and "interrupted" in again.json()["detail"]

        paused = client.post("/v1/runs", json={"target": "agent/cashier", "input": "refund"})
        assert paused.json()["status"] == "awaiting_approval"
        assert not (repo / "refunds.log").exists()
        approved = client.post(f"/v1/runs/{paused.json()['run_id']}/approve", json={})
        assert approved.status_code == 200, approved.text
        assert approved.json()["output"] == "done: refunded 500"
        assert (repo / "refunds.log").read_text().split() == ["500"]
        twice = client.post(f"/v1/runs/{paused.json()['run_id']}/approve", json={})
        assert twice.status_code == 409


def test_an_interrupted_workflow_run_resumes_over_the_api(running, admin_key):
    with running.client(admin_key) as client:
        started = client.post(
            "/v1/runs",
            json={"target": "workflow/slowflow", "input": {"seconds": 30}, "background": True},
        )
        run_id = started.json()["run_id"]
        wait_status(client, run_id, "running")
        time.sleep(0.3)  # the first step is done, the second waits
        client.post(f"/v1/runs/{run_id}/cancel")
        wait_status(client, run_id, "interrupted")
        # resuming runs the rest with the inputs it started with: make the nap short
        with Context(workspace=running.settings.workspace) as context:
            assert context.transcript(run_id).run.status == "interrupted"
        resumed = client.post(f"/v1/runs/{run_id}/resume", json={"background": True})
        assert resumed.status_code == 202 and resumed.json()["run_id"] == run_id
        assert client.post(f"/v1/runs/{run_id}/cancel").status_code == 202


def test_bad_requests_get_problem_details_never_a_500(running, admin_key):
    with running.client(admin_key) as client:
        cases = [
            (client.post("/v1/runs", content=b"{not json"), 400),
            (client.post("/v1/runs", content=b"[" * 100_000), 400),
            (client.post("/v1/runs", json={"target": "agent/echo", "input": "x", "extra": 1}), 422),
            (client.post("/v1/runs", json={"target": "agent/echo"}), 422),
            (client.post("/v1/runs", json={"target": "agent/none", "input": "x"}), 404),
            (client.post("/v1/runs", json={"target": "agent/echo", "input": {"a": 1}}), 422),
            (client.post("/v1/runs", content=b"x" * 1_100_000), 413),
            (client.get("/v1/runs", params={"limit": "many"}), 422),
            (client.get("/v1/runs", params={"nope": "1"}), 422),
            (client.get("/v1/runs/NOPE"), 404),
            (client.get("/v1/nothing"), 404),
            (client.put("/v1/runs"), 405),
            (client.get("/v1/resources/gizmo/x"), 404),
        ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
        problem = response.json()
        assert response.headers["content-type"] == PROBLEM
        assert problem["status"] == status and problem["detail"] and problem["type"]


def test_resources_are_read_and_changed_as_with_the_cli(running, repo, admin_key, tmp_path):
    with running.client(admin_key) as client:
        agents = client.get("/v1/resources", params={"kind": "agent"}).json()
        assert [a["name"] for a in agents] == ["cashier", "echo", "noter", "patient", "sleeper"]
        one = client.get("/v1/resources/agent/echo").json()
        assert one["document"]["spec"]["model"] == "echo" and one["revision"] == 1
        described = client.get("/v1/resources/agents/echo/describe").json()
        assert described["last_apply"]["creates"] > 0
        assert client.get("/v1/resources/agent/ghost").status_code == 404

        (repo / "agents.yaml").write_text((repo / "agents.yaml").read_text().replace(
            "instructions: Help.", "instructions: Help more."))  # fmt: skip
        assert invoke(["plan", "-f", str(repo), "--out", str(tmp_path / "p.json")],
                      cwd=repo).exit_code == 0  # fmt: skip
        plan = json.loads((tmp_path / "p.json").read_text())
        applied = client.post("/v1/apply", json={"plan": plan})
        assert applied.status_code == 200 and applied.json()["applied"]
        stale = client.post("/v1/apply", json={"plan": plan})
        assert stale.status_code == 409 and stale.json()["exit_code"] == 4
        history = client.get("/v1/resources/agent/echo/history").json()
        assert [r["revision"] for r in history] == [1, 2]
        back = client.post("/v1/resources/agent/echo/rollback", json={"to": 1})
        assert back.status_code == 200 and back.json()["applied"]
        gone = client.delete("/v1/resources/agent/echo")
        assert gone.status_code == 200
        assert client.get("/v1/resources/agent/echo").status_code == 404
    running.stop()  # audit records are written in batches; a stopping server writes the rest
    audit = invoke(["audit", "-o", "json"], cwd=repo)
    actions = [(r["action"], r["result"]) for r in json.loads(audit.stdout)]
    assert actions == [("resources.apply", "ok"), ("resources.apply", "failed"),
                       ("resources.rollback", "ok"), ("resources.delete", "ok")]  # fmt: skip


def test_the_server_follows_an_apply_made_by_the_cli(running, repo, admin_key):
    with running.client(admin_key) as client:
        assert client.post("/v1/runs", json={"target": "agent/new", "input": "x"}).status_code \
            == 404  # fmt: skip
        (repo / "new.yaml").write_text("apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: new}\n"
                                       "spec: {model: echo, instructions: Hi.}\n")  # fmt: skip
        assert invoke(["apply", "-f", str(repo), "--yes"], cwd=repo).exit_code == 0
        answer = client.post("/v1/runs", json={"target": "agent/new", "input": "hello"})
        assert answer.status_code == 200 and answer.json()["output"] == "hello"


def test_limits_answer_429_with_retry_after(repo):
    limits = Limits(rate_per_min=60, burst=2, max_runs_per_key=1)
    settings = ServeSettings(port=0, workspace=str(repo), limits=limits, grace_s=1)
    key = make_key(repo, "runner")
    with Running(settings) as running, running.client(key) as client:
        slow = client.post("/v1/runs", json={"target": "agent/sleeper", "input": "x",
                                             "background": True})  # fmt: skip
        assert slow.status_code == 202
        second = client.post("/v1/runs", json={"target": "agent/echo", "input": "x"})
        assert second.status_code == 429 and "runs going" in second.json()["detail"]
        third = client.get("/v1/runs")
        assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1
        other = make_key(repo, "viewer")
        assert running.client(other).get("/v1/runs").status_code == 200  # a bucket per key
    with Running(settings) as running, running.client("afk_guess") as guesser:
        statuses = [guesser.get("/v1/runs").status_code for _ in range(3)]
        assert statuses == [401, 401, 429]  # failed attempts count against the address


def test_health_readiness_metrics_and_request_ids(running, admin_key):
    with running.client() as anonymous:
        assert anonymous.get("/healthz").json() == {"status": "ok"}
        assert anonymous.get("/readyz").json()["status"] == "ready"
        assert anonymous.get("/v1/runs").status_code == 401
    with running.client(admin_key, **{"x-request-id": "trace-42"}) as client:
        answer = client.post("/v1/runs", json={"target": "agent/echo", "input": "x"})
        assert answer.headers["x-request-id"] == "trace-42"
        scrape = client.get("/metrics").text
    assert (
        'afctl_runs_total{kind="agent",status="succeeded",target="agent/echo"}' in scrape
        or 'afctl_runs_total{kind="agent",target="agent/echo",status="succeeded"}' in scrape
    )
    assert "afctl_http_requests_total" in scrape


def test_every_route_is_in_the_openapi_document_and_every_documented_one_exists(running):
    from afctl.server.api import API

    with running.client() as client:
        document = client.get("/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, operations in document["paths"].items()
                  for method in operations}  # fmt: skip
    declared = {(e.method, e.path) for e in API.endpoints}
    assert documented == declared
    with running.client() as client:
        for method, path in sorted(documented):
            concrete = path.replace("{", "").replace("}", "")  # {run_id} -> run_id
            answer = client.request(method, concrete)
            assert answer.status_code != 405, (method, path)
            assert not answer.text.startswith(
                '{"type": "urn:afctl:problem:not-found", '
                '"title": "Not found", "status": 404, '
                '"detail": "nothing at'
            ), (method, path)
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert operation["responses"] and operation["summary"], path


def test_secrets_never_reach_a_response(running, repo, admin_key, monkeypatch):
    with running.client(admin_key) as client:
        created = client.post("/v1/keys", json={"role": "viewer", "name": "ci"})
        assert created.status_code == 201
        secret = created.json()["key"]
        listed = client.get("/v1/keys").text
        assert secret not in listed and "hash" not in listed
        assert running.client(secret).get("/v1/runs").status_code == 200
        assert client.delete("/v1/keys/ci").status_code == 200
        assert running.client(secret).get("/v1/runs").status_code == 401  # at once
        audit = client.get("/v1/audit").text
        assert secret not in audit and admin_key not in audit


def test_what_a_server_keeps_per_run_is_bounded(monkeypatch):
    """A server starts millions of runs: the per-run memory it keeps has a cap (found by
    bench/serve_bench.py, whose server grew 260 bytes a request)."""
    import asyncio

    from afctl.logs import note_started, started
    from afctl.server import runs as served_runs

    for index in range(500):
        note_started(f"run-{index}", "agent", None)
    assert len(started) <= 100 and started[-1] == ("run-499", "agent")

    monkeypatch.setattr(served_runs, "FEEDS_KEPT", 10)

    async def many() -> int:
        manager = served_runs.RunManager(None, Limits(max_runs_per_key=1000))  # type: ignore[arg-type]

        async def work(feed, run_id):  # type: ignore[no-untyped-def]
            return {"status": "succeeded"}

        for _ in range(50):
            served = manager.start("k", "agent", "agent/x", work)
            await manager.wait(served, 5)
        return len(manager.feeds)

    assert asyncio.run(many()) == 10

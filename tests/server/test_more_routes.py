"""Plans and applies of uploaded manifests, evals in the background with their reports,
replay and diffs, stats and read-only SQL, and blueprints from a registry, over the API."""

from __future__ import annotations

import json
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from afctl.context import Context
from afctl.testing import invoke

SUITE = """\
apiVersion: afctl/v1
kind: EvalSuite
metadata: {name: echoes}
spec:
  target: {agent: echo}
  cases:
    - {id: hello, input: hello, assert: [{type: equals, value: hello}]}
    - {id: bye, input: bye, assert: [{type: contains, value: nope}]}
  thresholds: {pass_rate: 1.0}
"""


def files_of(root: Path, *names: str) -> dict[str, str]:
    return {name: (root / name).read_text() for name in names}


def test_uploaded_manifests_are_planned_and_applied_as_the_cli_would(running, repo, admin_key):
    (repo / "agents.yaml").write_text((repo / "agents.yaml").read_text().replace(
        "instructions: Help.", "instructions: Help twice."))  # fmt: skip
    files = files_of(repo, "agents.yaml", "models.yaml", "tools.yaml", "flows.yaml")
    with running.client(admin_key) as client:
        planned = client.post("/v1/plan", json={"files": files}).json()
        assert planned["summary"] == {"create": 0, "update": 5, "delete": 0, "unchanged": 10}
        assert {c["source_file"] for c in planned["changes"]} == {"agents.yaml"}
        broken = client.post("/v1/plan", json={"files": {"x.yaml": "kind: Agent\n"}})
        assert broken.status_code == 422 and broken.json()["exit_code"] == 3
        assert broken.json()["diagnostics"][0]["file"] == "x.yaml"
        applied = client.post("/v1/apply", json={"files": files})
        assert applied.status_code == 200 and applied.json()["apply"]["updates"] == 5
        # the same source set as a local `afctl apply -f .`: prune sees what it applied
        without_flows = files_of(repo, "agents.yaml", "models.yaml", "tools.yaml")
        pruned = client.post("/v1/apply", json={"files": without_flows, "prune": True}).json()
        assert pruned["apply"]["deletes"] == 2
    local = json.loads(invoke(["get", "workflow", "-o", "json"], cwd=repo).stdout)
    assert local == []


def _eval_done(client: Any, eval_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/v1/evals/{eval_id}").json()
        if job["status"] != "running":
            return dict(job)
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_an_eval_runs_in_the_background_and_its_reports_download(running, repo, admin_key):
    with running.client(admin_key) as client:
        started = client.post("/v1/evals", json={"files": {"evals/echo.yaml": SUITE}})
        assert started.status_code == 202, started.text
        job = _eval_done(client, started.json()["id"])
        assert job["status"] == "succeeded" and (job["done"], job["total"]) == (2, 2)
        assert job["passed"] is False and job["exit_code"] == 5  # as `afctl eval` would exit
        report = client.get(f"/v1/evals/{job['id']}/report").json()
        assert sorted(c["case_id"] for c in report[0]["cases"]) == ["bye", "hello"]
        junit = client.get(f"/v1/evals/{job['id']}/report", params={"format": "junit"})
        assert ET.fromstring(junit.text).get("failures") == "1"
        html = client.get(f"/v1/evals/{job['id']}/report", params={"format": "html"})
        assert html.headers["content-type"].startswith("text/html") and "echoes" in html.text
        refused = client.post("/v1/evals", json={"files": {"e.yaml": "kind: Agent\n"}})
        assert refused.status_code == 422


def test_replay_diffs_stats_and_read_only_sql(running, admin_key):
    with running.client(admin_key) as client:
        first = client.post("/v1/runs", json={"target": "agent/noter", "input": "a"}).json()
        second = client.post("/v1/runs", json={"target": "agent/echo", "input": "b"}).json()
        replayed = client.post(f"/v1/runs/{first['run_id']}/replay", json={}).json()
        assert replayed["reproduced"] is True
        diff = client.get(f"/v1/runs/{first['run_id']}/diff/{second['run_id']}").json()
        assert (diff["a"], diff["b"]) == (first["run_id"], second["run_id"])
        assert diff["tools_a"] == ["note"] and diff["tools_b"] == [] and not diff["same_output"]
        live = client.post(f"/v1/runs/{first['run_id']}/replay-live", json={}).json()
        assert live["run"]["output"] == "done: noted hi"
        stats = client.get("/v1/stats", params={"by": "agent"}).json()
        by_agent = {row["agent"]: row for row in stats["rows"]}
        assert by_agent["noter"]["runs"] == 1 and by_agent["echo"]["runs"] == 1  # no replays
        with_replays = client.get("/v1/stats", params={"by": "agent", "include_replays": "true"})
        assert {r["agent"]: r["runs"] for r in with_replays.json()["rows"]}["noter"] == 2
        rows = client.post("/v1/query", json={"sql": "SELECT count(*) AS n FROM runs"}).json()
        assert rows["rows"] == [{"n": 3}]
        for sql in ("SELECT 1; SELECT 2", "COPY (SELECT 1) TO '/tmp/x.csv'",
                    "SELECT * FROM read_text('/etc/hostname')", "DROP VIEW runs"):  # fmt: skip
            refused = client.post("/v1/query", json={"sql": sql})
            assert refused.status_code == 400, (sql, refused.text)
        assert client.get("/v1/usage").status_code == 200


def test_blueprints_install_from_the_configured_registry_only(running, repo, tmp_path):
    from tests.blueprints.test_registry import published

    published(tmp_path, repo)
    key = Context(workspace=repo).api_key_create("operator")[1]
    with running.client(key) as client:
        assert client.get("/v1/blueprints").json() == {}
        installed = client.post("/v1/blueprints", json={"ref": "support-desk@~1.0.0",
                                                        "set": ["company=Globex"]})  # fmt: skip
        assert installed.status_code == 200, installed.text
        assert installed.json()["version"] == "1.0.0" and installed.json()["trusted"] is False
        assert "support-desk" in client.get("/v1/blueprints").json()
        path = client.post("/v1/blueprints", json={"ref": "../../etc"})
        assert path.status_code == 422  # names from a registry only, never a path
        gone = client.delete("/v1/blueprints/support-desk")
        assert gone.status_code == 200 and gone.json()["applied"]
        assert client.delete("/v1/blueprints/support-desk").status_code == 404

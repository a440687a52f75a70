"""A workflow's `for_each` agent items fan out over `afctl worker`s: spread over workers,
carried out by the workflow's own worker when no other takes them (so a workflow holding the
only thread cannot wait forever), and a workflow whose worker is killed with kill -9 resumes
with its finished items standing and its interrupted ones going on."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from afctl.server.core import ServeSettings
from afctl.testing import write_repo
from tests.server.conftest import Running
from tests.workers.cluster import Cluster, cluster_on

TOOLS_PY = '''
import time
from pathlib import Path

ROOT = Path(__file__).parent.parent


def nap(key: str) -> str:
    """Note the call, take a moment (keys starting with `slow`: until a file named `wake`
    is at the root), then give the key back.

    Args:
        key: Anything.
    """
    with open(ROOT / "calls.log", "a") as log:
        log.write(key + "\\n")
    time.sleep(0.2)
    while key.startswith("slow") and not (ROOT / "wake").exists():
        time.sleep(0.05)
    return key
'''

FILES = {
    ".afctl/.gitignore": "*\n",
    "helpers/__init__.py": "",
    "helpers/tools.py": TOOLS_PY,
    "resources.yaml": (
        "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: nap}\n"
        "spec: {type: python, entrypoint: 'helpers.tools:nap'}\n---\n"
        "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
        "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
        "      - after_tool: nap\n        reply: 'done {{ tool_result }}'\n"
        "      - turn: 1\n        tool_calls: [{name: nap, arguments: {key: '{{ input }}'}}]\n"
        "---\n"
        "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: napper}\n"
        "spec: {model: script, instructions: Nap., tools: [nap]}\n---\n"
        "apiVersion: afctl/v1\nkind: Workflow\nmetadata: {name: spread}\nspec:\n"
        "  max_parallel: 8\n"
        "  inputs: {type: object, required: [keys], properties: {keys: {type: array}}}\n"
        "  steps:\n    - {id: each, agent: napper, for_each: inputs.keys, input: '{{ item }}'}\n"
        "  outputs: {said: '{{ steps.each.output }}'}\n"
    ),
}


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, broker_url: str, monkeypatch: Any) -> Any:
    yield from cluster_on(write_repo(tmp_path, FILES), postgres_url, broker_url, monkeypatch)


def spread(cluster: Cluster, keys: list[str]) -> tuple[Running, str]:
    """Start workflow/spread on `keys` in the background of a server queueing for workers."""
    server = Running(ServeSettings(port=0, workspace=str(cluster.repo), insecure_no_auth=True,
                                   executor="celery")).__enter__()  # fmt: skip
    with server.client() as client:
        started = client.post("/v1/runs", json={"target": "workflow/spread", "background": True,
                                                "input": {"keys": keys}})  # fmt: skip
    assert started.status_code == 202, started.text
    return server, started.json()["run_id"]


def runs(url: str, sql: str, *values: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as connection:
        return connection.execute(sql, list(values)).fetchall()


def until(check: Any, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def finished(url: str, run_id: str) -> str:
    found = runs(url, "SELECT status FROM afctl_log.runs WHERE id = %s", run_id)
    return str(found[0][0]) if found else "queued"


def items(url: str, run_id: str) -> list[tuple[Any, ...]]:
    return runs(url, "SELECT id, status, worker FROM afctl_log.runs WHERE parent_id = %s "
                     "AND kind = 'agent' ORDER BY id", run_id)  # fmt: skip


def test_items_spread_over_workers(cluster, postgres_url):
    cluster.start("w1", concurrency=3)
    cluster.start("w2", concurrency=6)
    keys = [f"k{i}" for i in range(8)]
    server, run_id = spread(cluster, keys)
    try:
        until(lambda: finished(postgres_url, run_id) == "succeeded")
    finally:
        server.stop()
    children = items(postgres_url, run_id)
    assert len(children) == 8 and {c[1] for c in children} == {"succeeded"}
    assert {c[2] for c in children} == {"w1", "w2"}  # not all on the workflow's worker
    calls = (cluster.repo / "calls.log").read_text().split()
    assert sorted(calls) == sorted(keys)  # each item once


def test_items_no_worker_takes_run_on_the_workflows_own_worker(cluster, postgres_url):
    cluster.start("w1", concurrency=1)  # the workflow holds the only thread
    server, run_id = spread(cluster, ["a", "b", "c"])
    try:
        until(lambda: finished(postgres_url, run_id) == "succeeded")
    finally:
        server.stop()
    children = items(postgres_url, run_id)
    assert len(children) == 3 and {c[1:] for c in children} == {("succeeded", "w1")}
    assert sorted((cluster.repo / "calls.log").read_text().split()) == ["a", "b", "c"]
    # the items' jobs still queued are taken later and find their runs done
    until(lambda: not runs(postgres_url, "SELECT 1 FROM afctl_log.runs WHERE status = 'running'"))


def test_a_workflow_whose_worker_is_killed_resumes_without_redoing_finished_items(
    cluster, postgres_url
):
    cluster.start("w1", concurrency=8)
    keys = ["a", "b", "c", "slow1", "slow2"]
    server, run_id = spread(cluster, keys)
    log = cluster.repo / "calls.log"
    try:

        def underway() -> bool:
            done = {c[0] for c in items(postgres_url, run_id) if c[1] == "succeeded"}
            return log.exists() and len(log.read_text().split()) == 5 and len(done) == 3

        until(underway)  # a, b and c finished; slow1 and slow2 in their tool calls
        cluster.kill("w1")
        cluster.start("w2", concurrency=8)
        (cluster.repo / "wake").write_text("")
        until(lambda: finished(postgres_url, run_id) == "succeeded")
    finally:
        server.stop()
    children = items(postgres_url, run_id)
    assert len(children) == 5 and {c[1] for c in children} == {"succeeded"}  # no item twice
    calls = log.read_text().split()
    # finished items were not run again; the calls in flight when w1 died were made again
    assert sorted(calls) == ["a", "b", "c", "slow1", "slow1", "slow2", "slow2"]
    (output,) = runs(postgres_url, "SELECT output FROM afctl_log.run_payloads WHERE run_id = %s",
                     run_id)[0]  # fmt: skip
    assert all(f"done {key}" in output for key in keys)

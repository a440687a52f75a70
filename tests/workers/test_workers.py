"""Runs and eval cases on `afctl worker`s over a real Redis and PostgreSQL: spread over
workers, a worker killed with kill -9 mid-way has its jobs redelivered and its runs resumed
from the log, and every case completes exactly once, as an in-process eval would have it."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from afctl.context import Context
from afctl.testing import write_repo
from tests.workers.cluster import cluster_on

CASES = 500

TOOLS_PY = '''
import time


def nap(key: str) -> str:
    """Take a moment, then give the key back.

    Args:
        key: Anything.
    """
    time.sleep(0.05)
    return key
'''


def suite(cases: int) -> str:
    lines = [
        "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: naps}\nspec:\n",
        "  target: {agent: napper}\n  concurrency: 8\n  thresholds: {pass_rate: 1.0}\n  cases:\n",
    ]
    for index in range(cases):
        lines.append(f"    - {{id: c{index}, input: q{index}, assert: "
                     f"[{{type: contains, value: 'done q{index}'}}]}}\n")  # fmt: skip
    return "".join(lines)


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
        "spec: {model: script, instructions: Nap., tools: [nap]}\n"
    ),
}


@pytest.fixture
def cluster(tmp_path: Path, postgres_url: str, broker_url: str, monkeypatch: Any) -> Any:
    yield from cluster_on(
        write_repo(tmp_path, {**FILES, "evals/naps.yaml": suite(CASES)}),
        postgres_url,
        broker_url,
        monkeypatch,
    )


def _finished_cases(url: str) -> int:
    with psycopg.connect(url) as connection:
        row = connection.execute("SELECT count(*) FROM afctl_log.runs WHERE eval_id IS NOT NULL "
                                 "AND status = 'succeeded'").fetchone()  # fmt: skip
    return int(row[0]) if row else 0


def test_a_worker_killed_mid_eval_loses_no_case_and_repeats_none(cluster, postgres_url):
    for name in ("w1", "w2", "w3"):
        cluster.start(name)
    outcome: dict[str, Any] = {}

    def evaluate() -> None:
        outcome["eval"] = cluster.afctl("eval", "evals/", "--executor", "celery", "-o", "json")

    thread = threading.Thread(target=evaluate)
    thread.start()
    deadline = time.monotonic() + 120
    while _finished_cases(postgres_url) < CASES // 5:
        assert time.monotonic() < deadline and thread.is_alive(), outcome
        time.sleep(0.05)
    cluster.kill("w2")  # mid-way, with runs in flight
    with psycopg.connect(postgres_url) as connection:
        in_flight = {r[0] for r in connection.execute(
            "SELECT id FROM afctl_log.runs WHERE worker = 'w2' AND status = 'running'")}  # fmt: skip
    thread.join(240)
    result = outcome["eval"]
    assert result.returncode == 0, result.stderr[-2000:]
    (report,) = json.loads(result.stdout)
    assert report["passed"] and len(report["cases"]) == CASES
    eval_id = report["eval_id"]
    with psycopg.connect(postgres_url) as connection:
        runs = connection.execute(
            "SELECT id, status, worker FROM afctl_log.runs WHERE eval_id = %s", [eval_id]
        ).fetchall()
        calls = connection.execute(
            "SELECT e.run_id, count(*) FROM afctl_log.events e JOIN afctl_log.runs r "
            "ON r.id = e.run_id WHERE r.eval_id = %s AND e.type = 'tool_call' GROUP BY e.run_id",
            [eval_id],
        ).fetchall()
    assert len(runs) == CASES and {r[1] for r in runs} == {"succeeded"}  # each case once
    assert {r[2] for r in runs} == {"w1", "w2", "w3"}  # spread over the workers
    # what the killed worker had in flight, another worker finished
    assert in_flight and {r[2] for r in runs if r[0] in in_flight} <= {"w1", "w3"}
    assert len(calls) == CASES and {c[1] for c in calls} == {1}  # no recorded call made again
    # the same suite in-process: the same verdict, case by case
    local = cluster.afctl("eval", "evals/", "--no-cache", "-o", "json")
    assert local.returncode == 0, local.stderr[-2000:]
    (here,) = json.loads(local.stdout)

    def verdicts(data: dict[str, Any]) -> list[tuple[Any, ...]]:
        return sorted((c["case_id"], c["passed"], c["score"], c["status"], c["output"])
                      for c in data["cases"])  # fmt: skip

    assert verdicts(report) == verdicts(here)


def test_a_run_is_carried_out_once_however_often_its_job_is_delivered(cluster, postgres_url):
    from afctl.workers.app import TASK, make_app
    from afctl.workers.jobs import Job
    from afctl.workers.settings import BrokerSettings

    cluster.start("w1", concurrency=4)
    settings = BrokerSettings.from_env()
    assert settings is not None
    with Context(workspace=cluster.repo) as context:
        from afctl.workers.queueing import stored_revision

        environment = context.services.runs.environment(context.services.state.catalog(), {})
        revision = stored_revision(context.services.logs.log, "agent", "napper", environment)
    job = Job("01JONCEXXXXXXXXXXXXXXXXXXX", "agent", "napper", revision, "again")
    app = make_app(settings)
    for _ in range(3):  # the same job, three times
        app.send_task(TASK, args=[job.to_dict()], task_id=job.run_id, queue=settings.queue)
    deadline = time.monotonic() + 60
    while True:
        with psycopg.connect(postgres_url) as connection:
            status = connection.execute("SELECT status FROM afctl_log.runs WHERE id = %s",
                                        [job.run_id]).fetchone()  # fmt: skip
            calls = connection.execute("SELECT count(*) FROM afctl_log.events WHERE run_id = %s "
                                       "AND type = 'tool_call'", [job.run_id]).fetchone()  # fmt: skip
        if status and status[0] == "succeeded":
            break
        assert time.monotonic() < deadline
        time.sleep(0.1)
    time.sleep(1)  # the other deliveries are taken and find it done
    assert calls == (1,)
    shown = cluster.afctl("runs", "-o", "json")
    (listed,) = [r for r in json.loads(shown.stdout) if r["id"] == job.run_id]
    assert listed["worker"] == "w1"
    table = cluster.afctl("runs").stdout.splitlines()
    assert table[0].split()[-1] == "WORKER" and table[1].split()[-1] == "w1"


def test_metrics_show_the_queue_and_the_runs_workers_carry_out(cluster, postgres_url):
    from afctl.server.metrics import ServerMetrics
    from afctl.workers.app import TASK, make_app
    from afctl.workers.jobs import Job
    from afctl.workers.settings import BrokerSettings

    settings = BrokerSettings.from_env()
    assert settings is not None
    app = make_app(settings)
    for index in range(3):  # no worker yet: they wait
        job = Job(f"01JQUEUED{index}XXXXXXXXXXXXXXXX", "agent", "napper", "none", "x")
        app.send_task(TASK, args=[job.to_dict()], task_id=job.run_id, queue=settings.queue)
    with Context(workspace=cluster.repo) as context:
        log = context.services.logs.log
        log.sql.execute("INSERT INTO runs (id, kind, target, env, status, started_at, worker, "
                        "heartbeat_at) VALUES ('01JGOING', 'agent', 'agent/napper', 'default', "
                        "'running', 'now', 'w9', ?)", [__import__("afctl.ids").ids.utc_now()])  # fmt: skip
        text = ServerMetrics(lambda: log, lambda: 0).text().decode()
    assert 'afctl_queue_depth{queue="afctl"} 3.0' in text
    assert 'afctl_worker_runs{worker="w9"} 1.0' in text


def test_a_job_that_cannot_be_carried_out_ends_its_run_failed(cluster, postgres_url):
    from afctl.workers.app import TASK, make_app
    from afctl.workers.jobs import Job
    from afctl.workers.settings import BrokerSettings

    cluster.start("w1", concurrency=2)
    settings = BrokerSettings.from_env()
    assert settings is not None
    job = Job("01JNOREVISIONXXXXXXXXXXXXX", "agent", "napper", "0" * 64, "hi")
    make_app(settings).send_task(TASK, args=[job.to_dict()], task_id=job.run_id,
                                 queue=settings.queue)  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        with psycopg.connect(postgres_url) as connection:
            row = connection.execute("SELECT status, error_type, error, worker FROM "
                                     "afctl_log.runs WHERE id = %s", [job.run_id]).fetchone()  # fmt: skip
        if row and row[0] != "running":
            break
        assert time.monotonic() < deadline, row
        time.sleep(0.1)
    status, error_type, error, worker = row
    assert (status, error_type, worker) == ("failed", "config", "w1")
    assert "is not in the prompt log" in error

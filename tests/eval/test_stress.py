"""`afctl eval --stress`: throughput, latency, time to first token, errors, timeouts and the
knee, against the loopback provider server."""

from __future__ import annotations

import json

import pytest

from afctl.context import Context
from afctl.eval.stress import StressReport, StressStep, parse_ramp
from afctl.fake_llm import Reply
from afctl.testing import invoke
from tests.eval.test_eval_runner import served_repo


def test_a_ramp_reports_each_step_and_finds_where_throughput_stops_growing(
    tmp_path, llm_server, monkeypatch
):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    # long enough a response that a run's own overhead (a few ms) cannot pass for growth
    llm_server.latency_s = 0.15
    # the model takes two requests at a time: past concurrency 2, throughput cannot grow
    repo = served_repo(tmp_path, llm_server.url, model=", max_concurrency: 2")
    (report,) = Context(workspace=repo).stress([str(repo)], [1, 2, 4], 1.5)
    one, two, four = (s.to_dict() for s in report.steps)
    assert [s["concurrency"] for s in (one, two, four)] == [1, 2, 4]
    assert two["throughput_per_s"] > 1.5 * one["throughput_per_s"]
    assert four["throughput_per_s"] < 1.1 * two["throughput_per_s"]
    assert report.knee == 2
    assert four["latency_ms"]["p50"] > two["latency_ms"]["p50"]  # waiting for the limit
    assert all(s["error_rate"] == 0 and s["timeout_rate"] == 0 for s in (one, two, four))
    # runs stream, so the time to the first token is measured (and comes before the end)
    assert 0 < one["ttft_ms"]["p50"] <= one["latency_ms"]["p50"]
    assert all(r.body.get("stream") for r in llm_server.requests)
    with Context(workspace=repo).prompt_log() as log:
        runs = log.conn.execute(
            "SELECT count(*) FROM runs WHERE eval_id = ?", [report.stress_id]
        ).fetchone()[0]
    assert runs == sum(s.runs for s in report.steps)  # every run is in the prompt log


def test_errors_and_timeouts_are_counted_per_step(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    count = {"n": 0}

    def every_other_fails(body):
        count["n"] += 1
        if count["n"] % 2:
            return Reply(status=400)  # not retried: the run fails
        return Reply(text="ok", stall_s=0.6 if count["n"] % 4 == 0 else 0.0)

    llm_server.responder = every_other_fails
    repo = served_repo(tmp_path, llm_server.url, suite="  timeout_s: 0.3\n")
    (report,) = Context(workspace=repo).stress([str(repo)], [2], 1.5)
    step = report.steps[0].to_dict()
    assert 0.3 < step["error_rate"] < 0.7
    assert 0.05 < step["timeout_rate"] < 0.5
    assert step["runs"] >= 4


def test_the_cli_prints_the_table_and_json_and_refuses_bad_flags(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    repo = served_repo(tmp_path, llm_server.url)
    shown = invoke(["eval", ".", "--stress", "--ramp", "1,2", "--duration", "0.3s"], cwd=repo)
    assert shown.exit_code == 0, shown.output
    assert "CONCURRENCY" in shown.stdout and "TTFT_P50" in shown.stdout
    assert "suite served (agent bot)" in shown.stdout
    as_json = invoke(
        ["eval", ".", "--stress", "--ramp", "1", "--duration", "0.2", "-o", "json"], cwd=repo
    )
    (data,) = json.loads(as_json.stdout)
    assert data["schema"] == "afctl.stress/v1" and data["steps"][0]["concurrency"] == 1
    bad = invoke(["eval", ".", "--stress", "--ramp", "4,1"], cwd=repo)
    assert bad.exit_code == 64 and "--ramp" in bad.stderr and "Traceback" not in bad.stderr
    bad = invoke(["eval", ".", "--stress", "--duration", "soon"], cwd=repo)
    assert bad.exit_code == 64 and "--duration" in bad.stderr


@pytest.mark.parametrize("text", ["", "0,1", "4,2", "1,1", "a,b", "-1"])
def test_a_ramp_must_rise(text):
    with pytest.raises(ValueError):
        parse_ramp(text)


def test_the_knee_is_where_throughput_gains_fall_below_ten_percent():
    def step(concurrency: int, per_second: float) -> StressStep:
        made = StressStep(concurrency, seconds=1.0)
        made.latencies_ms = [1.0] * int(per_second)
        return made

    growing = StressReport("s", "suite", "a", [step(1, 10), step(4, 38), step(16, 100)])
    assert growing.knee is None
    flat = StressReport("s", "suite", "a", [step(1, 10), step(4, 38), step(16, 40), step(64, 20)])
    assert flat.knee == 4

"""Triggers: schedules on a controllable clock, webhooks through `afctl serve` (signatures,
inputs, health, metrics, SIGTERM), and file watches with debounce."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.promptlog.store import PromptLog
from afctl.testing import invoke, write_repo
from afctl.triggers.definitions import Trigger, next_fire
from afctl.triggers.serve import Launcher, run_schedules, run_watch
from afctl.triggers.webhook import sign, signed_correctly, signed_headers
from tests.signals import as_from_a_shell

TOOLS_PY = '''
def note(text: str) -> str:
    """Echo a note.

    Args:
        text: The note.
    """
    return f"noted {text}"
'''


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus scrape (None: not there)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def run_status(repo: Path, run_id: str) -> str | None:
    """A run's status in the prompt log (None until it is there)."""
    from afctl.errors import UsageError

    with Context(workspace=repo).prompt_log() as log:
        try:
            return log.run(run_id).status
        except UsageError:
            return None


def repo_with(tmp_path: Path, triggers: str) -> Path:
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "ops/__init__.py": "",
            "ops/tools.py": TOOLS_PY,
            "flow.yaml": (
                "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: note}\n"
                "spec: {type: python, entrypoint: 'ops.tools:note'}\n---\n"
                "apiVersion: afctl/v1\nkind: Workflow\nmetadata: {name: hook}\nspec:\n"
                "  inputs: {type: object, required: [ticket], properties: {ticket: {type: string}}}\n"
                "  steps:\n    - {id: log, tool: note, input: {text: '{{ inputs.ticket }}'}}\n"
                "  outputs: {said: '{{ steps.log.output }}'}\n"
                f"  triggers:\n{triggers}"
            ),
        },
    )


def launcher_for(repo: Path, log: PromptLog) -> Launcher:
    from afctl.runtime.environment import Catalog, RunEnvironment
    from afctl.safety.secrets import Secrets

    catalog = Catalog.of(
        (m.kind, m.name, m.data) for m in Context(workspace=repo).load([str(repo)])
    )
    return Launcher(
        RunEnvironment(repo, Secrets(), catalog, workspace=repo / ".afctl"), log, "default"
    )


def test_next_fire_follows_the_cron_in_its_time_zone():
    trigger = Trigger("w", 0, "schedule", {"cron": "0 9 * * 1-5", "timezone": "Europe/Paris"})
    friday_evening = datetime.datetime(2026, 11, 27, 18, 0, tzinfo=datetime.UTC)
    # the next weekday 09:00 in Paris (UTC+1 in winter) is Monday 08:00 UTC
    assert next_fire(trigger, friday_evening) == datetime.datetime(
        2026, 11, 30, 8, 0, tzinfo=datetime.UTC
    )
    summer = datetime.datetime(2026, 7, 1, 12, 0, tzinfo=datetime.UTC)
    assert next_fire(trigger, summer).hour == 7  # UTC+2


class ClockStopped(Exception):
    pass


def test_a_schedule_fires_each_occurrence_once_even_with_two_servers(tmp_path):
    repo = repo_with(
        tmp_path, "    - {type: schedule, cron: '*/5 * * * *', input: {ticket: tick}}\n"
    )
    start = datetime.datetime(2026, 11, 25, 10, 2, tzinfo=datetime.UTC)
    end = start + datetime.timedelta(minutes=9)  # 10:05 and 10:10 fall inside

    async def scenario() -> None:
        now = [start]

        def clock() -> datetime.datetime:
            return now[0]

        async def sleep(seconds: float) -> None:
            now[0] += datetime.timedelta(seconds=seconds)
            if now[0] > end:
                raise ClockStopped
            await asyncio.sleep(0)

        with PromptLog.open(repo / ".afctl") as first, PromptLog.open(repo / ".afctl") as second:
            launchers = [launcher_for(repo, first), launcher_for(repo, second)]
            fired: list[list[str]] = [[], []]
            for launcher, seen in zip(launchers, fired, strict=True):
                launcher.on_fire = lambda workflow, kind, seen=seen: seen.append(workflow)
            trigger = Trigger(
                "hook", 0, "schedule", {"cron": "*/5 * * * *", "input": {"ticket": "tick"}}
            )
            for launcher in launchers:  # two servers on one workspace, one after the other
                now[0] = start
                with pytest.raises(ClockStopped):
                    await run_schedules([trigger], launcher, clock=clock, sleep=sleep)
                await launcher.drain(5)
            assert fired == [["hook", "hook"], []]

    asyncio.run(scenario())
    with Context(workspace=repo).prompt_log() as log:
        runs = log.conn.execute("SELECT status FROM runs WHERE kind = 'workflow'").fetchall()
        claimed = [
            r[0] for r in log.conn.execute("SELECT occurrence FROM trigger_firings ORDER BY 1")
        ]
    assert runs == [("succeeded",), ("succeeded",)]
    assert claimed == ["2026-11-25T10:05:00+00:00", "2026-11-25T10:10:00+00:00"]


def test_signatures():
    body = b'{"ticket": "T-1"}'
    secret = "s3cret-value"
    github = {"x-hub-signature-256": sign(secret, body), "x-github-delivery": "d-1"}
    assert signed_correctly(secret, body, github, "github")
    assert not signed_correctly(secret, body + b" ", github, "github")
    assert not signed_correctly("other", body, github, "github")
    own = {k.lower(): v for k, v in signed_headers(secret, body, 1_700_000_000).items()}
    assert signed_correctly(secret, body, own, "afctl")
    assert not signed_correctly(secret, body, {**own, "x-afctl-timestamp": "1700000001"}, "afctl")
    assert not signed_correctly(secret, body + b" ", own, "afctl")
    assert not signed_correctly(secret, body, {}, "afctl")


def request(url: str, body: bytes | None = None, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    call = urllib.request.Request(
        url, data=body, headers=headers or {}, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(call, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_for(check, timeout: float = 15.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_serve_runs_signed_webhooks_reports_metrics_and_stops_on_sigterm(tmp_path):
    triggers = (
        "    - {type: webhook, path: /hooks/tickets, secret: '${env:HOOK_SECRET}', "
        "input: {ticket: '{{ event.body.id }}'}}\n"
        "    - {type: schedule, cron: '0 9 * * *', timezone: Europe/Paris, input: {ticket: daily}}\n"
    )
    repo = repo_with(tmp_path, triggers)
    assert invoke(["apply", "-f", ".", "--yes"], cwd=repo).exit_code == 0
    listed = invoke(["triggers", "-o", "json"], cwd=repo)
    rows = json.loads(listed.stdout)
    assert [(r["type"], r["trigger"]) for r in rows] == [
        ("webhook", "POST /hooks/tickets, signed"),
        ("schedule", "0 9 * * * (Europe/Paris)"),
    ]
    assert rows[1]["next"].endswith(("T08:00:00+00:00", "T07:00:00+00:00"))
    secret = "hook-secret-value-123"
    missing = invoke(["serve", "--port", "0"], cwd=repo)
    assert missing.exit_code == 64 and "HOOK_SECRET" in missing.stderr
    afctl = Path(sys.executable).parent / "afctl"
    server = subprocess.Popen(
        [str(afctl), "serve", "--port", "0"], cwd=repo, env={**os.environ, "HOOK_SECRET": secret},
        stderr=subprocess.PIPE, text=True, preexec_fn=as_from_a_shell,
    )  # fmt: skip
    try:
        assert server.stderr is not None
        first = server.stderr.readline()
        assert "listening on http://127.0.0.1:" in first and "2 trigger(s)" in first, first
        url = first.split("listening on ", 1)[1].split(" ")[0]
        body = json.dumps({"id": "T-42"}).encode()
        assert request(url + "/healthz")[0] == 200
        status, _ = request(url + "/hooks/tickets", body, signed_headers("wrong", body))
        assert status == 401
        status, _ = request(url + "/hooks/tickets", body)
        assert status == 401  # unsigned
        assert request(url + "/hooks/other", body)[0] == 404
        bad = json.dumps({"nothing": 1}).encode()
        status, text = request(url + "/hooks/tickets", bad, signed_headers(secret, bad))
        assert status == 422 and "ticket" in text  # the mapped input fails the schema
        with Context(workspace=repo).prompt_log() as log:
            assert (
                log.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
            )  # nothing started
        status, text = request(url + "/hooks/tickets", body, signed_headers(secret, body))
        assert status == 202
        run_id = json.loads(text)["run_id"]

        def finished() -> bool:  # 202: accepted; the run is written as it starts
            return run_status(repo, run_id) == "succeeded"

        wait_for(finished)
        with Context(workspace=repo).prompt_log() as log:
            assert json.loads(log.payload(run_id)["output"]) == {"said": "noted T-42"}
        status, metrics = request(url + "/metrics")
        assert status == 200
        assert sample(metrics, "afctl_runs_total", kind="workflow", target="workflow/hook",
                      status="succeeded") == 1  # fmt: skip
        assert sample(metrics, "afctl_trigger_firings_total", workflow="hook",
                      trigger="webhook") == 1  # fmt: skip
        assert sample(metrics, "afctl_tool_calls_total", tool="note", status="ok") == 1
        assert sample(metrics, "afctl_run_latency_seconds_bucket", kind="workflow",
                      target="workflow/hook", le="+Inf") == 1  # fmt: skip
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
        rest = server.stderr.read()
        assert "trigger fired: workflow/hook by webhook" in rest and "wrong signature" in rest
        assert "afctl serve stopped" in rest and secret not in first + rest
    finally:
        if server.poll() is None:
            server.kill()


def test_a_file_change_fires_once_after_the_debounce(tmp_path):
    repo = repo_with(
        tmp_path,
        "    - {type: watch, paths: ['inbox/*.txt'], debounce_ms: 400, "
        "input: {ticket: '{{ event.paths | join(\",\") }}'}}\n",
    )
    (repo / "inbox").mkdir()
    trigger = Trigger(
        "hook",
        0,
        "watch",
        {
            "paths": ["inbox/*.txt"],
            "debounce_ms": 400,
            "input": {"ticket": "{{ event.paths | join(',') }}"},
        },
    )

    fired: list[tuple[str, str]] = []

    async def scenario() -> Launcher:
        with PromptLog.open(repo / ".afctl") as log:
            launcher = launcher_for(repo, log)
            launcher.on_fire = lambda workflow, kind: fired.append((workflow, kind))
            stop = asyncio.Event()
            watching = asyncio.create_task(run_watch(trigger, repo, launcher, stop))
            await asyncio.sleep(0.5)  # the watcher is up
            for index in range(3):  # one burst of changes
                (repo / "inbox" / "a.txt").write_text(f"version {index}")
                (repo / "inbox" / "ignored.md").write_text("not watched")
                await asyncio.sleep(0.05)
            await asyncio.sleep(1.5)
            stop.set()
            await asyncio.wait_for(watching, 5)
            await launcher.drain(5)
            return launcher

    asyncio.run(scenario())
    assert fired == [("hook", "watch")]
    with Context(workspace=repo).prompt_log() as log:
        (run,) = [r for r in log.runs(limit=5) if r.kind == "workflow"]
        assert json.loads(log.payload(run.id)["output"]) == {"said": "noted inbox/a.txt"}


def test_serve_follows_the_applied_state(tmp_path):
    """Issue 15: after an apply, new runs use the new workflow, and its triggers are served."""
    repo = repo_with(
        tmp_path, "    - {type: webhook, path: /hooks/a, input: {ticket: '{{ event.body.id }}'}}\n"
    )
    assert invoke(["apply", "-f", ".", "--yes"], cwd=repo).exit_code == 0
    afctl = Path(sys.executable).parent / "afctl"
    server = subprocess.Popen([str(afctl), "serve", "--port", "0"], cwd=repo,
                              stderr=subprocess.PIPE, text=True,
                              preexec_fn=as_from_a_shell)  # fmt: skip
    try:
        assert server.stderr is not None
        url = server.stderr.readline().split("listening on ", 1)[1].split(" ")[0]
        body = json.dumps({"id": "T-1"}).encode()
        assert request(url + "/hooks/b", body)[0] == 404
        flow = (repo / "flow.yaml").read_text()
        flow = flow.replace("path: /hooks/a", "path: /hooks/b").replace(
            "{text: '{{ inputs.ticket }}'}", "{text: 'v2 {{ inputs.ticket }}'}")  # fmt: skip
        (repo / "flow.yaml").write_text(flow)
        assert invoke(["apply", "-f", ".", "--yes"], cwd=repo).exit_code == 0

        def accepted():  # type: ignore[no-untyped-def]
            answer = request(url + "/hooks/b", body)
            return answer if answer[0] == 202 else None

        _, text = wait_for(accepted)
        run_id = json.loads(text)["run_id"]
        assert request(url + "/hooks/a", body)[0] == 404

        def finished() -> bool:  # 202: accepted; the run is written as it starts
            return run_status(repo, run_id) == "succeeded"

        wait_for(finished)
        with Context(workspace=repo).prompt_log() as log:
            assert json.loads(log.payload(run_id)["output"]) == {"said": "noted v2 T-1"}
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=20)

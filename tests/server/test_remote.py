"""`afctl.Client`, `afctl.AsyncClient` and the CLI's remote mode (--server / AFCTL_SERVER):
the same answers, output and exit codes as a local workspace."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

import afctl
from afctl.errors import ManifestError, StateConflict, UsageError
from afctl.testing import invoke
from tests.server.conftest import make_key
from tests.server.test_more_routes import SUITE

VOLATILE = {"plan_id", "created_at", "run_id", "eval_id", "started_at", "latency_ms", "seconds",
            "id", "at", "ended_at", "pid", "host", "runs"}  # fmt: skip


def steady(value: Any) -> Any:
    """`value` without the ids and times that differ from one run to the next."""
    if isinstance(value, dict):
        return {k: steady(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [steady(v) for v in value]
    return value


def both(repo: Path, url: str, key: str, *args: str) -> tuple[Any, Any]:
    """`afctl ARGS` locally and on the server (AFCTL_SERVER): (local, remote) invocations."""
    local = invoke(list(args), cwd=repo)
    remote = invoke(list(args), cwd=repo, env={"AFCTL_SERVER": url, "AFCTL_API_KEY": key})
    return local, remote


def test_remote_commands_print_what_local_ones_print(running, repo, admin_key):
    (repo / "evals").mkdir()
    (repo / "evals" / "echo.yaml").write_text(SUITE)
    for args in (["get", "agent", "-o", "json"], ["get", "agent", "echo", "-o", "yaml"],
                 ["describe", "agent/echo", "-o", "json"]):  # fmt: skip
        local, remote = both(repo, running.url, admin_key, *args)
        assert (remote.exit_code, remote.stdout) == (local.exit_code, local.stdout), args
    ran_local, ran_remote = both(repo, running.url, admin_key, "run", "agent/noter", "x", "-o",
                                 "json")  # fmt: skip
    assert ran_remote.exit_code == ran_local.exit_code == 0
    assert steady(json.loads(ran_remote.stdout)) == steady(json.loads(ran_local.stdout))
    shown_local, shown_remote = both(
        repo,
        running.url,
        admin_key,
        "runs",
        "show",
        json.loads(ran_remote.stdout)["run_id"],
        "-o",
        "json",
    )
    assert json.loads(shown_remote.stdout) == json.loads(shown_local.stdout)
    flow_local, flow_remote = both(repo, running.url, admin_key, "run", "workflow/flow",
                                   "--input", "ticket=T-1", "-o", "json")  # fmt: skip
    assert steady(json.loads(flow_remote.stdout)) == steady(json.loads(flow_local.stdout))
    (repo / "agents.yaml").write_text((repo / "agents.yaml").read_text().replace(
        "instructions: Help.", "instructions: Help more."))  # fmt: skip
    planned_local, planned_remote = both(repo, running.url, admin_key, "plan", "-f", ".",
                                         "-o", "json")  # fmt: skip
    assert steady(json.loads(planned_remote.stdout)) == steady(json.loads(planned_local.stdout))
    evaluated_local, evaluated_remote = both(repo, running.url, admin_key, "eval",
                                             "evals/", "-o", "json")  # fmt: skip
    assert evaluated_remote.exit_code == evaluated_local.exit_code == 5
    remote_report, local_report = (
        json.loads(evaluated_remote.stdout),
        json.loads(evaluated_local.stdout),
    )
    assert remote_report[0].pop("cache") == {"hits": 2, "misses": 0}  # the local eval's answers
    assert local_report[0].pop("cache") == {"hits": 0, "misses": 2}
    assert steady(remote_report) == steady(local_report)
    for args, code in ((["get", "agent", "ghost"], 64), (["run", "agent/ghost", "x"], 64),
                       (["runs", "show", "NOPE"], 64)):  # fmt: skip
        local, remote = both(repo, running.url, admin_key, *args)
        assert remote.exit_code == local.exit_code == code, (args, remote.stderr)
        assert remote.stderr == local.stderr


def test_a_remote_apply_asks_plans_and_applies_exactly_what_it_showed(running, repo):
    key = make_key(repo, "admin")
    env = {"AFCTL_SERVER": running.url, "AFCTL_API_KEY": key}
    (repo / "agents.yaml").write_text((repo / "agents.yaml").read_text().replace(
        "instructions: Help.", "instructions: Help more."))  # fmt: skip
    refused = invoke(["apply", "-f", "."], cwd=repo, env=env)
    assert refused.exit_code == 64 and "--yes" in refused.stderr
    applied = invoke(["apply", "-f", ".", "--yes"], cwd=repo, env=env)
    assert applied.exit_code == 0 and "Apply complete: 0 created, 5 updated" in applied.stdout
    assert f"Workspace: {running.url}" in applied.stdout
    again = invoke(["apply", "-f", ".", "--yes", "--prune"], cwd=repo, env=env)
    assert again.exit_code == 0 and "No changes" in again.stdout
    local = invoke(["get", "agent", "echo", "-o", "json"], cwd=repo)
    assert json.loads(local.stdout)["revision"] == 2  # the server's workspace is this one
    (repo / "bad.yaml").write_text("apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: x}\n")
    broken = invoke(["apply", "-f", ".", "--yes"], cwd=repo, env=env)
    assert broken.exit_code == 3 and "bad.yaml" in broken.stderr


def test_remote_errors_name_what_to_do(running, repo):
    viewer = make_key(repo, "viewer")
    env = {"AFCTL_SERVER": running.url, "AFCTL_API_KEY": viewer}
    forbidden = invoke(["run", "agent/echo", "hi"], cwd=repo, env=env)
    assert forbidden.exit_code == 1 and "runner role" in forbidden.stderr
    other_env = invoke(["get", "agent", "--env", "prod"], cwd=repo, env=env)
    assert other_env.exit_code == 64 and "serves environment default, not prod" in other_env.stderr
    unreachable = invoke(["runs", "--server", "http://127.0.0.1:9"], cwd=repo)
    assert unreachable.exit_code == 1 and "cannot reach the server" in unreachable.stderr
    local_only = invoke(["run", "agent/echo", "hi", "-f", "."], cwd=repo, env=env)
    assert local_only.exit_code == 64 and "applied there" in local_only.stderr
    assert "Traceback" not in forbidden.stderr + unreachable.stderr


def test_the_python_client_mirrors_the_context(running, repo, admin_key):
    with afctl.Client(running.url, api_key=admin_key, workspace=repo) as client:
        result = client.run("agent/noter", "hello")
        assert isinstance(result, afctl.RunResult) and result.output == "done: noted hi"
        kinds = [kind for kind, _ in client.events(result.run_id)]
        assert kinds[0] == "tool_call" and kinds[-1] == "result"
        assert [r.name for r in client.get("agent")] == [
            "cashier",
            "echo",
            "noter",
            "patient",
            "sleeper",
        ]
        assert client.transcript(result.run_id).run.status == "succeeded"
        plan = client.plan(str(repo))
        assert not plan.has_changes
        paused = client.run("agent/cashier", "refund")
        assert paused.status == "awaiting_approval"
        assert client.approve(paused.run_id).output == "done: refunded 500"
        with pytest.raises(UsageError, match="not defined in environment default"):
            client.run("agent/ghost", "x")
        with pytest.raises(ManifestError):
            client.plan([str(repo / "agents.yaml")])  # agents without their models
        stale = client.plan(str(repo))
        (repo / "agents.yaml").write_text((repo / "agents.yaml").read_text().replace(
            "instructions: Help.", "instructions: Help again."))  # fmt: skip
        client.apply(str(repo))
        with pytest.raises(StateConflict):
            client.apply_saved_plan(stale)


def test_the_async_client_runs_many_at_once(running, admin_key):
    async def main() -> list[str | None]:
        async with afctl.AsyncClient(running.url, api_key=admin_key) as client:
            results = await asyncio.gather(*(client.run("agent/echo", f"n{i}") for i in range(8)))
            return [r.output for r in results]

    assert asyncio.run(main()) == [f"n{i}" for i in range(8)]

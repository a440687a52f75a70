"""The GitOps commands through the CLI: plan, apply, diff, get, describe, history, rollback,
delete and force-unlock, with golden output for plans and diffs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from afctl.testing import invoke, write_repo

MODEL = """\
apiVersion: afctl/v1
kind: Model
metadata: {name: fast, labels: {tier: "1"}}
spec: {provider: local, model: echo, params: {temperature: 0.2}}
"""
AGENT = """\
apiVersion: afctl/v1
kind: Agent
metadata: {name: helper}
spec:
  model: fast
  instructions: |
    You help.
  limits: {max_turns: 4}
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_repo(
        tmp_path, {".afctl/.gitignore": "*\n", "models.yaml": MODEL, "agents/helper.yaml": AGENT}
    )


def run(repo: Path, *args: str, input: str | None = None):
    return invoke(list(args), cwd=repo, input=input)


def scrub(text: str) -> str:
    """Remove what changes from run to run (ids, times) so output can be compared exactly."""
    text = re.sub(r"apply [0-9A-Z]{26}", "apply <id>", text)
    return re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<time>", text)


def test_plan_output_is_golden(repo):
    first = run(repo, "plan", "-f", ".")
    assert first.exit_code == 0
    assert first.stdout == (
        "Environment: default   Workspace: .afctl   State serial: 0\n"
        "\n"
        "  + model/fast                             models.yaml:1\n"
        "  + agent/helper                           agents/helper.yaml:1\n"
        "\n"
        "Plan: 2 to create, 0 to update, 0 to delete.\n"
    )
    assert run(repo, "apply", "-f", ".", "--yes").exit_code == 0
    write_repo(
        repo,
        {
            "agents/helper.yaml": AGENT.replace("max_turns: 4", "max_turns: 6").replace(
                "You help.", "You help.\n    Briefly."
            )
        },
    )
    (repo / "models.yaml").unlink()
    write_repo(
        repo,
        {
            "agents/helper.yaml": (repo / "agents/helper.yaml")
            .read_text()
            .replace("model: fast", "model: local/echo")
        },
    )
    second = run(repo, "plan", "-f", ".", "--prune", "--detailed-exitcode")
    assert second.exit_code == 2
    assert second.stdout == (
        "Environment: default   Workspace: .afctl   State serial: 1\n"
        "\n"
        "  - model/fast\n"
        "      (no longer in .)\n"
        "  ~ agent/helper                           agents/helper.yaml:1\n"
        '      ~ spec.model: "fast" → "local/echo"\n'
        '      ~ spec.instructions: "You help.\\n" → (text, 2 lines)\n'
        "      ~ spec.limits.max_turns: 4 → 6\n"
        "\n"
        "Plan: 0 to create, 1 to update, 1 to delete.\n"
    )


def test_diff_output_is_golden_and_exits_2(repo):
    run(repo, "apply", "-f", ".", "--yes")
    write_repo(repo, {"agents/helper.yaml": AGENT.replace("max_turns: 4", "max_turns: 6")})
    result = run(repo, "diff", "-f", ".")
    assert result.exit_code == 2
    assert result.stdout == (
        "--- applied/agent/helper\n"
        "+++ desired/agent/helper\n"
        "@@ -7,4 +7,4 @@\n"
        "   instructions: |\n"
        "     You help.\n"
        "   limits:\n"
        "-    max_turns: 4\n"
        "+    max_turns: 6\n"
    )
    run(repo, "apply", "-f", ".", "--yes")
    unchanged = run(repo, "diff", "-f", ".")
    assert unchanged.exit_code == 0 and unchanged.stdout == ""


def test_apply_needs_yes_off_a_terminal(repo):
    refused = run(repo, "apply", "-f", ".")
    assert refused.exit_code == 64 and "--yes" in refused.stderr
    assert run(repo, "get", "all").stdout.startswith("No resources applied")


def test_apply_then_get_describe_history_rollback_delete(repo):
    applied = run(repo, "apply", "-f", ".", "--yes")
    assert applied.exit_code == 0
    assert "Apply complete: 2 created, 0 updated, 0 deleted." in applied.stdout
    table = run(repo, "get", "models")
    assert table.stdout.splitlines()[0].split() == ["KIND", "NAME", "REVISION", "AGE", "SOURCE"]
    assert "fast" in table.stdout
    assert run(repo, "get", "all", "-o", "name").stdout == "model/fast\nagent/helper\n"
    assert run(repo, "get", "agent", "-l", "tier=1", "-o", "name").stdout == ""
    one = json.loads(run(repo, "get", "model/fast", "-o", "json").stdout)
    assert one["revision"] == 1 and one["document"]["spec"]["model"] == "echo"
    assert run(repo, "get", "model", "-o", "yaml").stdout.startswith("apiVersion: afctl/v1")
    described = scrub(run(repo, "describe", "agent/helper").stdout)
    assert "Source:        agents/helper.yaml   (source set .)" in described
    assert "Apply command: afctl apply -f . --yes" in described
    write_repo(repo, {"models.yaml": MODEL.replace("0.2", "0.9")})
    run(repo, "apply", "-f", ".", "--yes")
    history = run(repo, "history", "model/fast").stdout.splitlines()
    assert [line.split()[:2] for line in history] == [
        ["REVISION", "ACTION"], ["1", "create"], ["2", "update"]
    ]  # fmt: skip
    rolled = run(repo, "rollback", "model/fast", "--to", "1", "--yes")
    assert rolled.exit_code == 0 and "rollback to revision 1" in rolled.stdout
    assert json.loads(run(repo, "history", "model/fast", "-o", "json").stdout)[-1]["action"] == (
        "rollback"
    )
    deleted = run(repo, "delete", "agent/helper", "--yes")
    assert deleted.exit_code == 0 and "0 created, 0 updated, 1 deleted" in deleted.stdout
    assert run(repo, "get", "agents").stdout.startswith("No agents resources")
    assert run(repo, "describe", "agent/helper").exit_code == 64


def test_saved_plans_through_the_cli(repo):
    saved = run(repo, "plan", "-f", ".", "--out", "plan.json")
    assert "Saved the plan to plan.json" in saved.stdout
    # a saved plan is the approval: applied off a terminal without --yes (issue 15 #12)
    assert run(repo, "apply", "plan.json").exit_code == 0
    stale = run(repo, "apply", "plan.json")
    assert stale.exit_code == 4 and "the plan is stale" in stale.stderr  # not "asks for..."
    assert run(repo, "apply", "--yes").exit_code == 64
    assert run(repo, "apply", "plan.json", "-f", ".", "--yes").exit_code == 64
    (repo / "junk.json").write_text("[1, 2]")
    assert run(repo, "apply", "junk.json", "--yes").exit_code == 64
    missing = run(repo, "apply", "-f", "missing.yaml")  # the file first, not the terminal
    assert missing.exit_code in (3, 64) and "missing.yaml" in missing.stderr
    assert "confirmation" not in missing.stderr
    asked = run(repo, "apply", "-f", ".")  # off a terminal, changes to make: say so
    assert asked.exit_code in (0, 64)


def test_plan_json_and_invalid_manifests(repo):
    data = json.loads(run(repo, "plan", "-f", ".", "-o", "json").stdout)
    assert data["summary"] == {"create": 2, "update": 0, "delete": 0, "unchanged": 0}
    write_repo(repo, {"agents/helper.yaml": AGENT.replace("model: fast", "model: fats")})
    broken = run(repo, "plan", "-f", ".")
    assert broken.exit_code == 3
    assert 'did you mean "fast"?' in broken.stderr and "agents/helper.yaml:5:10" in broken.stderr


def test_protected_deletes_fail_with_exit_3(repo):
    write_repo(
        repo, {"models.yaml": MODEL.replace("labels:", "lifecycle: {protect: true}, labels:")}
    )
    run(repo, "apply", "-f", ".", "--yes")
    (repo / "models.yaml").unlink()
    write_repo(repo, {"agents/helper.yaml": AGENT.replace("model: fast", "model: local/echo")})
    result = run(repo, "apply", "-f", ".", "--prune", "--yes")
    assert result.exit_code == 3 and "protected resources: model/fast" in result.stderr


def test_envs_and_force_unlock(repo):
    assert run(repo, "apply", "-f", ".", "--yes", "--env", "prod").exit_code == 0
    assert run(repo, "get", "all", "--env", "prod", "-o", "name").stdout.count("\n") == 2
    assert run(repo, "get", "all", "-o", "name").stdout == ""
    assert run(repo, "plan", "-f", ".", "--env", "Bad Env").exit_code == 64
    missing = run(repo, "force-unlock", "XYZ")
    assert missing.exit_code == 4 and "not locked" in missing.stderr


def test_lock_timeout_is_a_duration(repo):
    bad = run(repo, "apply", "-f", ".", "--yes", "--lock-timeout", "soon")
    assert bad.exit_code == 64 and "duration" in bad.stderr


def test_a_misspelt_kind_gets_a_suggestion_in_the_users_case(repo):
    result = run(repo, "get", "agnets")
    assert result.exit_code == 64 and 'did you mean "agents"?' in result.stderr

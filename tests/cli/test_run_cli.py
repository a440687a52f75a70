"""`afctl run` and `afctl runs` through the CLI, offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from afctl.testing import invoke, write_repo


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    from afctl.scaffold import init_project

    init_project(tmp_path / "repo")
    return tmp_path / "repo"


def test_run_from_files_and_from_the_applied_state(repo):
    from_files = invoke(["run", "-f", ".", "agent/counter", "count these three words"], cwd=repo)
    assert from_files.exit_code == 0, from_files.output
    assert from_files.stdout == "That text has 4 words.\n"
    assert "succeeded · 2 turns · 1 tool call" in from_files.stderr
    not_applied = invoke(["run", "agent/counter", "count"], cwd=repo)
    assert not_applied.exit_code == 64 and "apply it first" in not_applied.stderr
    assert invoke(["apply", "-f", ".", "--yes"], cwd=repo).exit_code == 0
    applied = invoke(["run", "agent/assistant", "hello there", "-o", "json"], cwd=repo)
    data = json.loads(applied.stdout)
    assert data["status"] == "succeeded" and data["output"] == "hello there"
    assert data["model"] == "local/echo" and data["run_id"]


def test_vars_input_from_stdin_and_one_agent_files(repo):
    write_repo(
        repo,
        {
            "solo/agent.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: solo}\n"
                "spec: {model: local/echo, instructions: 'Hi {{ vars.who }}'}\n"
            )
        },
    )
    missing = invoke(["run", "-f", "solo", "hello"], cwd=repo)
    assert missing.exit_code == 1 and "--var" in missing.stderr
    ok = invoke(["run", "-f", "solo", "-", "--var", "who=Ada"], cwd=repo, input="from stdin\n")
    assert ok.exit_code == 0 and ok.stdout == "from stdin\n"
    assert invoke(["run", "-f", "solo", "x", "--var", "novalue"], cwd=repo).exit_code == 64
    several = invoke(["run", "-f", ".", "hello"], cwd=repo)
    assert several.exit_code == 64 and "name the agent" in several.stderr


def test_runs_lists_and_shows_transcripts(repo):
    invoke(["run", "-f", ".", "agent/counter", "count a b"], cwd=repo)
    invoke(["run", "-f", ".", "agent/assistant", "echo me"], cwd=repo)
    listing = invoke(["runs"], cwd=repo).stdout.splitlines()
    assert listing[0].split()[:3] == ["RUN", "TARGET", "STATUS"]
    assert "agent/assistant" in listing[1] and "agent/counter" in listing[2]
    data = json.loads(invoke(["runs", "--agent", "counter", "-o", "json"], cwd=repo).stdout)
    (counter,) = data
    assert counter["status"] == "succeeded" and counter["tool_calls"] == 1
    shown = invoke(["runs", "show", counter["id"][:16]], cwd=repo)
    assert shown.exit_code == 0
    assert '→ word_count({"text": "count a b"})' in shown.stdout
    assert "← word_count: 3" in shown.stdout
    assert "agent   That text has 3 words." in shown.stdout
    full = json.loads(invoke(["runs", "show", counter["id"], "-o", "json"], cwd=repo).stdout)
    assert [e["type"] for e in full["events"]] == ["model_call", "tool_call", "model_call"]
    assert invoke(["runs", "show", "nope"], cwd=repo).exit_code == 64
    failed = invoke(["runs", "--status", "failed"], cwd=repo)
    assert failed.stdout.strip() == "No runs yet."


def test_json_logs_carry_the_run_id(repo):
    result = invoke(
        ["--log-format", "json", "run", "-f", ".", "agent/counter", "count a b"], cwd=repo
    )
    lines = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert {line["message"] for line in lines} >= {"run started: agent/counter", "run succeeded"}
    run_ids = {line["run_id"] for line in lines}
    assert len(run_ids) == 1 and None not in run_ids
    assert any(line.get("tool") == "word_count" for line in lines)


def test_the_transcript_of_a_session_turn_shows_the_earlier_answers(repo):
    """Issue 15 #16: no two user lines back to back."""
    for text in ("hello there", "and again"):
        assert (
            invoke(
                ["run", "-f", ".", "agent/assistant", text, "--session", "s1"], cwd=repo
            ).exit_code
            == 0
        )
    last = json.loads(invoke(["runs", "-n", "1", "-o", "json"], cwd=repo).stdout)[0]["id"]
    shown = invoke(["runs", "show", last], cwd=repo).stdout
    roles = [line.split()[0] for line in shown.splitlines() if line.startswith(("user", "agent"))]
    assert roles == ["user", "agent", "user", "agent"], shown


def test_the_first_apply_keeps_the_workspace_out_of_git(tmp_path):
    """Issue 15: a repository not made by `afctl init` gets .afctl/.gitignore too."""
    repo = write_repo(tmp_path / "fresh", {
        "a.yaml": "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: local/echo}\n"
    })  # fmt: skip
    assert invoke(["apply", "-f", ".", "--yes"], cwd=repo).exit_code == 0
    assert (repo / ".afctl" / ".gitignore").read_text().splitlines()[-1] == "*"


def test_runs_lists_inputs_and_export_content_holds_prompts_and_answers(repo, tmp_path):
    """Issue 15: `runs` had no input column; export had metrics only."""
    assert (
        invoke(["run", "-f", ".", "agent/assistant", "where is my parcel"], cwd=repo).exit_code == 0
    )
    listed = invoke(["runs"], cwd=repo).stdout
    assert "INPUT" in listed.splitlines()[0] and "where is my parcel" in listed
    out = tmp_path / "calls.jsonl"
    done = invoke(
        ["export", "model_calls", "--format", "jsonl", "--content", "--out", str(out)], cwd=repo
    )
    assert done.exit_code == 0
    row = json.loads(out.read_text().splitlines()[0])
    assert "where is my parcel" in row["payload"]
    plain = tmp_path / "plain.jsonl"
    invoke(["export", "model_calls", "--format", "jsonl", "--out", str(plain)], cwd=repo)
    assert "payload" not in json.loads(plain.read_text().splitlines()[0])


def test_runs_show_of_a_workflow_shows_its_inputs(repo):
    done = invoke(["run", "-f", ".", "workflow/ticket", "--input", "text=charged twice"], cwd=repo)
    assert done.exit_code in (0, 1), done.output
    listed = json.loads(invoke(["runs", "-n", "20", "-o", "json"], cwd=repo).stdout)
    last = next(r["id"] for r in listed if r["kind"] == "workflow")
    shown = invoke(["runs", "show", last], cwd=repo).stdout
    assert "inputs" in shown and "charged twice" in shown

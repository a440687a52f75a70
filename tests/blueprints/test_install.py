"""Installing blueprints: through plan/apply, labelled, trusted before python tools run,
removed exactly on uninstall; a refused or failed install changes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.errors import UsageError
from afctl.testing import invoke, write_repo
from tests.blueprints.test_archives import CASES, EXAMPLE, craft

OTHER = (
    "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: mine}\n"
    "spec: {model: local/echo, instructions: Mine.}\n"
)


def workspace(tmp_path: Path) -> Path:
    repo = write_repo(tmp_path / "repo", {".afctl/.gitignore": "*\n", "mine.yaml": OTHER})
    assert invoke(["apply", "-f", "mine.yaml", "--yes"], cwd=repo).exit_code == 0
    return repo


def state(repo: Path) -> dict[str, dict[str, object]]:
    with Context(workspace=repo) as context:
        store = context.services.state.require()
        return {f"{r.kind}/{r.name}": r.document for r in store.resources("default").values()}


def store_listing(repo: Path) -> list[str]:
    folder = repo / ".afctl" / "blueprints"
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_install_trust_run_eval_reinstall_and_uninstall_leave_state_as_before(tmp_path):
    repo = workspace(tmp_path)
    before = state(repo)
    archive = tmp_path / "desk.afbp"
    assert invoke(["blueprint", "pack", str(EXAMPLE), "-o", str(archive)]).exit_code == 0
    dry = invoke(["blueprint", "install", str(archive), "--dry-run"], cwd=repo)
    assert dry.exit_code == 0 and "Plan: 5 to create" in dry.stdout
    assert "python   run its own python code (modules tools)  [needs trust]" in dry.stdout
    assert state(repo) == before and store_listing(repo) == []  # a dry run changes nothing

    done = invoke(
        ["blueprint", "install", str(archive), "--set", "company=Globex", "--yes"], cwd=repo
    )
    assert done.exit_code == 0, done.output
    installed = state(repo)
    labels = installed["Agent/support-triage"]["metadata"]["labels"]  # type: ignore[index]
    assert (
        labels["afctl/blueprint"] == "support-desk" and labels["afctl/blueprint-version"] == "1.0.0"
    )
    assert installed["Agent/mine"] == before["Agent/mine"]  # others untouched
    refused = invoke(["run", "agent/support-triage", "I want a refund"], cwd=repo)
    assert refused.exit_code == 1 and "not trusted" in refused.stderr
    assert invoke(["blueprint", "trust", "support-desk"], cwd=repo).exit_code == 0
    answer = invoke(["run", "agent/support-triage", "I want a refund"], cwd=repo)
    assert answer.exit_code == 0 and "Billing at Globex" in answer.stdout
    shipped = repo / ".afctl" / "blueprints" / "support-desk" / "1.0.0" / "evals"
    assert invoke(["eval", str(shipped)], cwd=repo).exit_code == 0  # its own evals pass
    listed = json.loads(invoke(["blueprint", "list", "-o", "json"], cwd=repo).stdout)
    assert (
        listed["support-desk"]["values"]["company"] == "Globex"
        and listed["support-desk"]["trusted"]
    )

    again = invoke(
        ["blueprint", "install", str(archive), "--set", "company=Globex", "--yes"], cwd=repo
    )
    assert again.exit_code == 0 and "No changes. 5 resource(s) up to date." in again.stdout
    changed = invoke(
        ["blueprint", "install", str(EXAMPLE), "--set", "company=Initech", "--yes"], cwd=repo
    )
    assert changed.exit_code == 0 and "4 updated" in changed.stdout  # all that name the company

    gone = invoke(["blueprint", "uninstall", "support-desk", "--yes"], cwd=repo)
    assert gone.exit_code == 0 and "5 deleted" in gone.stdout
    assert state(repo) == before
    assert invoke(["blueprint", "list", "-o", "json"], cwd=repo).stdout.strip() == "{}"
    assert not (repo / ".afctl" / "blueprints" / "support-desk").exists()


def test_an_install_never_takes_over_resources_it_did_not_create(tmp_path):
    repo = workspace(tmp_path)
    (repo / "mine.yaml").write_text(OTHER.replace("name: mine", "name: support-triage"))
    assert invoke(["apply", "-f", "mine.yaml", "--yes"], cwd=repo).exit_code == 0
    before = state(repo)
    with pytest.raises(UsageError, match=r"agent/support-triage was applied from mine\.yaml"):
        Context(workspace=repo).blueprint_install(EXAMPLE)
    assert state(repo) == before and store_listing(repo) == []


def test_a_failed_or_refused_install_changes_nothing(tmp_path):
    repo = workspace(tmp_path)
    before = state(repo)
    bad_values = invoke(
        ["blueprint", "install", str(EXAMPLE), "--set", "refund_limit=lots", "--yes"], cwd=repo
    )
    assert bad_values.exit_code == 64 and "do not fit its parameters" in bad_values.stderr
    for case in ("traversal", "symlink", "duplicate"):
        archive = craft(tmp_path / f"{case}.afbp", CASES[case][0])
        refused = invoke(["blueprint", "install", str(archive), "--yes"], cwd=repo)
        assert refused.exit_code == 64 and CASES[case][1] in refused.stderr, refused.stderr
    assert state(repo) == before and store_listing(repo) == []
    assert invoke(["blueprint", "uninstall", "support-desk", "--yes"], cwd=repo).exit_code == 64


def test_a_blueprint_for_another_afctl_is_refused(tmp_path):
    import shutil

    repo = workspace(tmp_path)
    folder = tmp_path / "future"
    shutil.copytree(EXAMPLE, folder)
    meta = folder / "blueprint.yaml"
    meta.write_text(meta.read_text().replace("  pricing:", "  afctl_version: '>=9.0'\n  pricing:"))
    refused = invoke(["blueprint", "install", str(folder), "--yes"], cwd=repo)
    assert refused.exit_code == 64 and "needs afctl >=9.0" in refused.stderr
    assert store_listing(repo) == []

"""Registries: publish, search, info, install NAME@RANGE with afctl.lock, requires, upgrade,
digests that must match, HTTP registries, and usage metering."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from afctl.context import Context
from afctl.testing import invoke
from tests.blueprints.test_install import state, workspace

EXAMPLES = Path(__file__).parents[2] / "blueprints"


def version_of(
    tmp_path: Path, name: str, version: str, edit: dict[str, tuple[str, str]] | None = None
) -> Path:
    """A copy of an example blueprint at another version (with optional text edits)."""
    folder = tmp_path / f"src-{name}-{version}"
    shutil.copytree(EXAMPLES / name, folder)
    meta = folder / "blueprint.yaml"
    meta.write_text(meta.read_text().replace("version: 1.0.0", f"version: {version}"))
    for relative, (old, new) in (edit or {}).items():
        path = folder / relative
        path.write_text(path.read_text().replace(old, new))
    return folder


def published(tmp_path: Path, repo: Path) -> Path:
    registry = tmp_path / "registry"
    assert invoke(["registry", "add", "local", str(registry)], cwd=repo).exit_code == 0
    for folder in (
        EXAMPLES / "support-desk",
        version_of(tmp_path, "support-desk", "1.1.0",
                   {"knowledge/shipping.md": ("2 business days", "1 business day")}),
        EXAMPLES / "research-assistant",
    ):  # fmt: skip
        archive = tmp_path / f"{folder.name}.afbp"
        assert invoke(["blueprint", "pack", str(folder), "-o", str(archive)]).exit_code == 0
        done = invoke(["blueprint", "publish", str(archive), "--registry", "local"], cwd=repo)
        assert done.exit_code == 0, done.output
    return registry


def test_publish_search_install_upgrade_uninstall_round_trip(tmp_path):
    repo = workspace(tmp_path)
    before = state(repo)
    registry = published(tmp_path, repo)
    index = json.loads((registry / "index.json").read_text())
    assert sorted(index["blueprints"]["support-desk"]["versions"]) == ["1.0.0", "1.1.0"]
    found = json.loads(invoke(["blueprint", "search", "support", "-o", "json"], cwd=repo).stdout)
    assert [(f["name"], f["version"]) for f in found] == [("support-desk", "1.1.0")]
    research = json.loads(invoke(["blueprint", "search", "", "--category", "research", "-o", "json"],
                                 cwd=repo).stdout)  # fmt: skip
    assert [f["name"] for f in research] == ["research-assistant"]
    info = json.loads(invoke(["blueprint", "info", "support-desk", "-o", "json"], cwd=repo).stdout)
    assert info["versions"]["1.0.0"]["metadata"]["pricing"] == {"model": "free"}

    first = invoke(["blueprint", "install", "support-desk@~1.0.0", "--set", "company=Globex",
                    "--trust", "--yes"], cwd=repo)  # fmt: skip
    assert first.exit_code == 0, first.output
    lock = json.loads((repo / "afctl.lock").read_text())["blueprints"]
    assert (
        lock["support-desk"]["version"] == "1.0.0" and lock["support-desk"]["registry"] == "local"
    )
    shipping = invoke(["run", "agent/support-triage", "How fast do orders ship?"], cwd=repo)
    assert "2 business days" in shipping.stdout

    upgraded = invoke(["blueprint", "upgrade", "support-desk", "--yes"], cwd=repo)
    assert upgraded.exit_code == 0, upgraded.output
    assert "support-desk is at 1.1.0" in upgraded.stdout
    listed = json.loads(invoke(["blueprint", "list", "-o", "json"], cwd=repo).stdout)
    assert listed["support-desk"]["version"] == "1.1.0"
    assert listed["support-desk"]["values"]["company"] == "Globex"  # kept across the upgrade
    assert (
        json.loads((repo / "afctl.lock").read_text())["blueprints"]["support-desk"]["version"]
        == "1.1.0"
    )
    assert (
        "1 business day"
        in invoke(["run", "agent/support-triage", "How fast do orders ship?"], cwd=repo).stdout
    )
    assert sorted(p.name for p in (repo / ".afctl/blueprints/support-desk").iterdir()) == ["1.1.0"]

    assert invoke(["blueprint", "uninstall", "support-desk", "--yes"], cwd=repo).exit_code == 0
    assert state(repo) == before


def test_digests_must_match_the_index_and_the_lock(tmp_path):
    repo = workspace(tmp_path)
    registry = published(tmp_path, repo)
    before = state(repo)
    again = tmp_path / "again.afbp"
    other = version_of(tmp_path / "alt", "support-desk", "1.1.0", {"README.md": ("desk", "DESK")})
    invoke(["blueprint", "pack", str(other), "-o", str(again)])
    refused = invoke(["blueprint", "publish", str(again), "--registry", "local"], cwd=repo)
    assert refused.exit_code == 64 and "already published with other content" in refused.stderr
    # a file swapped behind the index's back is refused before it is read
    shutil.copy(again, registry / "support-desk-1.1.0.afbp")
    swapped = invoke(["blueprint", "install", "support-desk@1.1.0", "--yes"], cwd=repo)
    assert swapped.exit_code == 64 and "does not match its digest" in swapped.stderr
    assert state(repo) == before and '"support-desk"' not in (repo / "afctl.lock").read_text()
    # a republished version (index and file changed together) differs from the lock
    assert invoke(["blueprint", "install", "support-desk@1.0.0", "--yes"], cwd=repo).exit_code == 0
    index = json.loads((registry / "index.json").read_text())
    entry = index["blueprints"]["support-desk"]["versions"]["1.0.0"]
    shutil.copy(again, registry / entry["file"])
    entry["digest"] = hashlib.sha256(again.read_bytes()).hexdigest()
    (registry / "index.json").write_text(json.dumps(index))
    locked = invoke(["blueprint", "install", "support-desk@1.0.0", "--yes"], cwd=repo)
    assert locked.exit_code == 64 and "differs from afctl.lock" in locked.stderr


def test_requires_are_installed_first_and_locked(tmp_path):
    repo = workspace(tmp_path)
    published(tmp_path, repo)
    needs = version_of(tmp_path, "research-assistant", "2.0.0")
    meta = needs / "blueprint.yaml"
    meta.write_text(
        meta.read_text().replace(
            "  parameters:",
            "  requires:\n    - {name: support-desk, version: '^1.0'}\n  parameters:",
        )
    )
    archive = tmp_path / "needs.afbp"
    assert invoke(["blueprint", "pack", str(needs), "-o", str(archive)]).exit_code == 0
    assert (
        invoke(["blueprint", "publish", str(archive), "--registry", "local"], cwd=repo).exit_code
        == 0
    )
    done = invoke(["blueprint", "install", "research-assistant@2", "--yes"], cwd=repo)
    assert done.exit_code == 0, done.output
    lock = json.loads((repo / "afctl.lock").read_text())["blueprints"]
    assert (
        lock["research-assistant"]["version"] == "2.0.0"
        and lock["support-desk"]["version"] == "1.1.0"
    )
    assert set(json.loads(invoke(["blueprint", "list", "-o", "json"], cwd=repo).stdout)) == {
        "research-assistant", "support-desk"
    }  # fmt: skip


def test_an_http_registry_serves_installs(tmp_path):
    source_repo = workspace(tmp_path / "publisher")
    registry = published(tmp_path / "publisher", source_repo)
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(registry))
    handler.log_message = lambda *args: None  # type: ignore[attr-defined]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        repo = workspace(tmp_path / "consumer")
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert invoke(["registry", "add", "web", url], cwd=repo).exit_code == 0
        found = json.loads(
            invoke(["blueprint", "search", "research", "-o", "json"], cwd=repo).stdout
        )
        assert found[0]["registry"] == "web"
        done = invoke(["blueprint", "install", "research-assistant", "--yes"], cwd=repo)
        assert done.exit_code == 0, done.output
        refused = invoke(["blueprint", "publish", str(tmp_path / "publisher" / "support-desk.afbp"),
                          "--registry", "web"], cwd=repo)  # fmt: skip
        assert refused.exit_code == 64 and "is a URL" in refused.stderr
    finally:
        server.shutdown()


def test_usage_sums_blueprint_runs_and_prices_usage_blueprints(tmp_path):
    repo = workspace(tmp_path)
    published(tmp_path, repo)
    assert invoke(["blueprint", "install", "research-assistant", "--yes"], cwd=repo).exit_code == 0
    assert (
        invoke(["blueprint", "install", "support-desk", "--trust", "--yes"], cwd=repo).exit_code
        == 0
    )
    for question in ("How much sunlight do panels convert?", "Why offshore wind?"):
        assert invoke(["run", "agent/researcher", question], cwd=repo).exit_code == 0
    assert (
        invoke(["run", "agent/support-triage", "How fast do orders ship?"], cwd=repo).exit_code == 0
    )
    assert invoke(["run", "agent/mine", "not a blueprint's"], cwd=repo).exit_code == 0
    rows = {r["blueprint"]: r for r in Context(workspace=repo).usage(["blueprint"])}
    assert set(rows) == {"research-assistant", "support-desk"}
    research = rows["research-assistant"]
    assert (
        research["runs"] == 2 and research["amount_due"] == 0.02 and research["currency"] == "USD"
    )
    assert rows["support-desk"]["runs"] == 1 and rows["support-desk"]["amount_due"] is None
    by_agent = invoke(["usage", "--by", "blueprint,agent"], cwd=repo)
    assert (
        by_agent.exit_code == 0
        and "researcher" in by_agent.stdout
        and "0.0200 USD" in by_agent.stdout
    )
    assert invoke(["usage", "--by", "colour"], cwd=repo).exit_code == 64


def test_a_teammate_installs_exactly_what_the_lock_pins(tmp_path):
    """Issue 15: registries live in the committed afctl.lock (not the ignored .afctl), so a
    fresh clone can install --locked; uninstall forgets the pin."""
    import shutil

    repo = workspace(tmp_path)
    registry = published(tmp_path, repo)
    assert invoke(["blueprint", "install", "support-desk", "--yes"], cwd=repo).exit_code == 0
    lock = json.loads((repo / "afctl.lock").read_text())
    assert lock["registries"]["local"] in (str(registry), "../registry")
    assert lock["blueprints"]["support-desk"]["version"] == "1.1.0"  # the newest
    clone = tmp_path / "clone"  # what git gives a teammate: no .afctl
    shutil.copytree(repo, clone, ignore=shutil.ignore_patterns(".afctl"))
    got = invoke(["blueprint", "install", "--locked", "--yes"], cwd=clone)
    assert got.exit_code == 0, got.output
    listed = json.loads(invoke(["blueprint", "list", "-o", "json"], cwd=clone).stdout)
    assert listed["support-desk"]["digest"] == lock["blueprints"]["support-desk"]["digest"]
    assert (
        invoke(["blueprint", "install", "--locked", "nothing", "--yes"], cwd=clone).exit_code == 64
    )
    assert invoke(["blueprint", "uninstall", "support-desk", "--yes"], cwd=clone).exit_code == 0
    assert "support-desk" not in json.loads((clone / "afctl.lock").read_text())["blueprints"]

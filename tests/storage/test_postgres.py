"""PostgreSQL as the storage backend, where it differs from the SQLite files: configuration
mistakes, migrations made on purpose, the workspace lock across processes, and a whole
workflow (apply, run, runs, stats) through the CLI in separate processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.errors import StateConflict
from afctl.testing import write_repo
from tests.postgres import PASSWORD

AFCTL = str(Path(sys.executable).parent / "afctl")
MANIFESTS = {
    ".afctl/.gitignore": "*\n",
    "agent.yaml": "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: echo}\n"
    "spec: {model: local/echo, instructions: Say it back.}\n",
}


def afctl(repo: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in its own process, on the database at `url`."""
    env = {**os.environ, "AFCTL_DATABASE_URL": url}
    return subprocess.run([AFCTL, *args], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_repo(tmp_path, MANIFESTS)


def test_a_workspace_lives_in_postgresql_end_to_end(repo, postgres_url):
    assert afctl(repo, postgres_url, "db", "status", "--detailed-exitcode").returncode == 2
    migrated = afctl(repo, postgres_url, "db", "migrate")
    assert migrated.returncode == 0, migrated.stderr
    assert "ran 0001_initial" in migrated.stdout and "***" in migrated.stdout
    assert PASSWORD not in migrated.stdout + migrated.stderr
    again = afctl(repo, postgres_url, "db", "migrate", "-o", "json")
    assert [s["ran"] for s in json.loads(again.stdout)] == [[], []]  # nothing twice
    assert afctl(repo, postgres_url, "db", "status", "--detailed-exitcode").returncode == 0
    applied = afctl(repo, postgres_url, "apply", "-f", ".", "--yes")
    assert applied.returncode == 0, applied.stderr
    ran = afctl(repo, postgres_url, "run", "agent/echo", "hello there", "-o", "json")
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    shown = afctl(repo, postgres_url, "runs", "show", run_id)
    assert shown.returncode == 0 and "hello there" in shown.stdout
    stats = afctl(repo, postgres_url, "stats", "--by", "agent", "-o", "json")
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)[0]["runs"] == 1
    # nothing went to the SQLite files
    assert not (repo / ".afctl" / "state.db").exists()
    assert not (repo / ".afctl" / "logs.db").exists()


@pytest.mark.parametrize("what", ["unreachable", "password", "database"])
def test_a_database_that_cannot_be_used_is_one_clear_line(repo, postgres, what):
    url = {
        "unreachable": "postgresql://afctl:hunter2-pw@127.0.0.1:1/afctl",
        "password": postgres.url(password="hunter2-pw"),
        "database": postgres.url("no_such_db").replace(PASSWORD, "hunter2-pw"),
    }[what]
    result = afctl(repo, url, "get", "agents")
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: cannot use the database postgresql://afctl:***@127.0.0.1")
    assert "AFCTL_DATABASE_URL" in lines[0] and "hunter2-pw" not in result.stderr
    assert "Traceback" not in result.stderr and len(lines) <= 2
    assert not (repo / ".afctl" / "state.db").exists()


def test_missing_migrations_say_to_migrate_and_write_nothing(repo, postgres_url):
    result = afctl(repo, postgres_url, "apply", "-f", ".", "--yes")
    assert result.returncode == 1
    assert "lacks afctl's state migrations 0001_initial" in result.stderr
    assert "afctl db migrate" in result.stderr and "Traceback" not in result.stderr
    import psycopg

    with psycopg.connect(postgres_url) as connection:  # no tables were made behind its back
        tables = connection.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'afctl_%'"
        ).fetchone()
    assert tables is not None and tables[0] == 0


def test_not_a_postgresql_url_is_a_usage_error(repo):
    result = afctl(repo, "mysql://root:pw@localhost/x", "get", "agents")
    assert result.returncode == 64 and "not a PostgreSQL URL" in result.stderr
    assert "pw@" not in result.stderr


def test_a_database_a_newer_afctl_migrated_is_refused(repo, postgres_url, monkeypatch):
    monkeypatch.setenv("AFCTL_DATABASE_URL", postgres_url)
    Context(workspace=repo).db_migrate()
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("INSERT INTO afctl_state.afctl_migrations VALUES "
                           "('afctl-state', '9999_future', 'later')")  # fmt: skip
    with pytest.raises(StateConflict, match=r"newer afctl \(migration 9999_future"):
        Context(workspace=repo).get()


def _migrated(repo: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AFCTL_DATABASE_URL", url)
    Context(workspace=repo).db_migrate()


def test_concurrent_applies_never_interleave(repo, postgres_url, monkeypatch):
    _migrated(repo, postgres_url, monkeypatch)
    for index in range(6):  # six manifest sets, applied at once by six processes
        folder = repo / f"set{index}"
        write_repo(folder, {"a.yaml": MANIFESTS["agent.yaml"].replace("name: echo",
                                                                      f"name: a{index}")})  # fmt: skip
    results: list[subprocess.CompletedProcess[str]] = []

    def apply(index: int) -> None:
        results.append(afctl(repo, postgres_url, "apply", "-f", f"set{index}", "--yes",
                             "--lock-timeout", "60s"))  # fmt: skip

    threads = [threading.Thread(target=apply, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    import psycopg

    with psycopg.connect(postgres_url) as connection:
        serials = [r[0] for r in connection.execute(
            "SELECT serial_before FROM afctl_state.applies ORDER BY serial_before")]  # fmt: skip
        serial = connection.execute("SELECT serial FROM afctl_state.environments").fetchone()
    assert serials == [0, 1, 2, 3, 4, 5] and serial == (6,)  # one after another, none lost


def test_an_apply_refused_by_a_held_lock_exits_4(repo, postgres_url, monkeypatch):
    from afctl.state.store import StateStore
    from afctl.storage.settings import StorageSettings

    _migrated(repo, postgres_url, monkeypatch)
    store = StateStore.open(repo / ".afctl", settings=StorageSettings.from_env())
    try:
        store.acquire_lock("afctl apply (a colleague)", timeout_s=0)
        refused = afctl(repo, postgres_url, "apply", "-f", ".", "--yes", "--lock-timeout", "0")
        assert refused.returncode == 4 and "a colleague" in refused.stderr
    finally:
        store.close()  # its session's lock goes with it
    assert afctl(repo, postgres_url, "apply", "-f", ".", "--yes").returncode == 0


def test_a_lock_whose_holder_died_does_not_block(repo, postgres_url, monkeypatch):
    _migrated(repo, postgres_url, monkeypatch)
    Context(workspace=repo).apply(str(repo))
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:  # as a killed apply left it
        connection.execute("INSERT INTO afctl_state.locks VALUES ('workspace', 'L1', 999999999, "
                           "'elsewhere', 'x', 'afctl apply', 'then')")  # fmt: skip
    write_repo(repo, {"agent.yaml": MANIFESTS["agent.yaml"].replace("Say it", "Repeat it")})
    assert Context(workspace=repo).apply(str(repo), lock_timeout=0).applied


def test_force_unlock_ends_the_session_that_holds_the_lock(repo, postgres_url, monkeypatch):
    from afctl.state.store import StateStore
    from afctl.storage.settings import StorageSettings

    _migrated(repo, postgres_url, monkeypatch)
    store = StateStore.open(repo / ".afctl", settings=StorageSettings.from_env())
    try:
        held = store.acquire_lock("afctl apply (hung)", timeout_s=0)
        assert Context(workspace=repo).force_unlock(held.lock_id).lock_id == held.lock_id
        assert Context(workspace=repo).apply(str(repo), lock_timeout=5).applied
    finally:
        store.close()

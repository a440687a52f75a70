"""`afctl db copy --to URL`: a laptop workspace moves into a team's PostgreSQL database whole
(state, revisions, runs, events, payloads, evals, sessions), verified, and a second copy adds
nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from afctl.testing import invoke

COMMANDS = [
    ["apply", "-f", ".", "--yes"],
    ["run", "agent/counter", "count the words in this sentence please"],
    ["run", "agent/desk", "How do I get a refund?", "--session", "s1"],
    ["run", "agent/desk", "count the words of: to be or not to be", "--session", "s1"],
    ["run", "workflow/ticket", "--input", "text=I was charged twice, please refund"],
    ["eval", "evals/", "--json", "eval.json"],
    ["auth", "keys", "create", "--role", "viewer", "--name", "ci"],
]


@pytest.fixture
def laptop(tmp_path: Path) -> Path:
    """A workspace used for a while on SQLite: applied, runs, a session, an eval, a key."""
    made = invoke(["init", "demo"], cwd=tmp_path)
    assert made.exit_code == 0, made.stderr
    repo = tmp_path / "demo"
    for command in COMMANDS:
        result = invoke(command, cwd=repo)
        assert result.exit_code in (0, 5), (command, result.stderr)
    return repo


def shown(repo: Path, *command: str) -> str:
    result = invoke(list(command), cwd=repo)
    assert result.exit_code == 0, (command, result.stderr)
    return result.stdout


READS = [
    ("get", "all", "-o", "json"),
    ("history", "agent/desk", "-o", "json"),
    ("runs", "-n", "50", "-o", "json"),
    ("runs", "show", "last"),
    ("stats", "--by", "agent,model", "-o", "json"),
    ("query", "SELECT type, count(*) AS n FROM events GROUP BY type ORDER BY type"),
]


def test_a_workspace_moves_whole_and_a_second_copy_adds_nothing(laptop, postgres_url, monkeypatch):
    before = {read: shown(laptop, *read) for read in READS}
    copied = invoke(["db", "copy", "--to", postgres_url, "-o", "json"], cwd=laptop)
    assert copied.exit_code == 0, copied.stderr
    stores = {s["store"]: s for s in json.loads(copied.stdout)}
    tables = {t["table"]: t for s in stores.values() for t in s["tables"]}
    for table in ("resources", "revisions", "applies", "api_keys", "runs", "run_payloads",
                  "events", "event_payloads", "eval_records", "eval_cases", "sessions",
                  "session_messages", "response_cache"):  # fmt: skip
        assert tables[table]["source_rows"] > 0, table
        assert tables[table]["copied"] == tables[table]["source_rows"], table
    assert "***" in stores["log"]["target"] and "test-password" not in copied.stdout
    again = invoke(["db", "copy", "--to", postgres_url, "-o", "json"], cwd=laptop)
    assert again.exit_code == 0, again.stderr
    assert [s["copied"] for s in json.loads(again.stdout)] == [0, 0]
    # the same workspace, read from PostgreSQL
    monkeypatch.setenv("AFCTL_DATABASE_URL", postgres_url)
    after = {read: shown(laptop, *read) for read in READS}
    assert after == before
    replayed = invoke(["replay", "last"], cwd=laptop)
    assert replayed.exit_code == 0, replayed.stderr
    applied = invoke(["plan", "-f", ".", "--detailed-exitcode"], cwd=laptop)
    assert applied.exit_code == 0, applied.stdout  # nothing to change: the state came along


def test_a_copy_into_a_database_holding_other_content_is_a_conflict(laptop, postgres_url):
    assert invoke(["db", "copy", "--to", postgres_url], cwd=laptop).exit_code == 0
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute("UPDATE afctl_log.runs SET status = 'failed' WHERE kind = 'workflow'")
    clash = invoke(["db", "copy", "--to", postgres_url], cwd=laptop)
    assert clash.exit_code == 4, clash.stderr
    assert "runs: postgresql://afctl:***@" in clash.stderr and "other content" in clash.stderr


def test_copy_needs_a_postgresql_target_and_the_sqlite_files(laptop, postgres_url, monkeypatch):
    wrong = invoke(["db", "copy", "--to", "sqlite:///x.db"], cwd=laptop)
    assert wrong.exit_code == 64 and "not a PostgreSQL URL" in wrong.stderr
    monkeypatch.setenv("AFCTL_DATABASE_URL", postgres_url)
    already = invoke(["db", "copy", "--to", postgres_url], cwd=laptop)
    assert already.exit_code == 64 and "db copy moves a workspace's SQLite files" in already.stderr
    assert os.environ["AFCTL_DATABASE_URL"] == postgres_url

"""The prompt log through DuckDB: stats, SQL over the views, exports, and retention."""

from __future__ import annotations

import datetime
import json
import sqlite3

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afctl.context import Context
from afctl.errors import UsageError
from afctl.promptlog.store import PromptLog
from afctl.storage.settings import StorageSettings
from afctl.testing import invoke

RUNS = [
    # id, agent, model, status, started_at, latency, tokens in/out, cost, labels
    ("01A", "support", "openai/m", "succeeded", "2026-11-01T10:00:00.000Z", 100.0, 10, 5, 0.01, '{"team": "cx"}'),
    ("01B", "support", "openai/m", "failed", "2026-11-01T11:00:00.000Z", 300.0, 20, 0, 0.02, '{"team": "cx"}'),
    ("01C", "support", "anthropic/h", "succeeded", "2026-11-02T10:00:00.000Z", 200.0, 5, 5, None, '{"team": "cx"}'),
    ("01D", "billing", "openai/m", "succeeded", "2026-11-02T12:00:00.000Z", 400.0, 1, 1, 0.5, None),
]  # fmt: skip


@pytest.fixture
def workspace(tmp_path, backend):
    """A repository whose prompt log (in SQLite, or in PostgreSQL) holds known runs."""
    log = PromptLog.open(tmp_path / ".afctl", StorageSettings.from_env())
    for run_id, agent, model, status, started, latency, tokens_in, tokens_out, cost, labels in RUNS:
        log.sql.execute(
            "INSERT INTO runs (id, kind, target, agent, env, status, model, started_at, latency_ms,"
            " input_tokens, output_tokens, cost_usd, labels, is_replay) "
            "VALUES (?, 'agent', ?, ?, 'default', ?, ?, ?, ?, ?, ?, ?, ?, 0)",
            [run_id, f"agent/{agent}", agent, status, model, started, latency, tokens_in,
             tokens_out, cost, labels],
        )  # fmt: skip
        log.sql.execute(
            "INSERT INTO events (run_id, seq, type, at, turn, model, latency_ms, input_tokens, "
            "output_tokens, cost_usd, status) VALUES (?, 1, 'model_call', ?, 1, ?, ?, ?, ?, ?, 'stop')",
            [run_id, started, model, latency, tokens_in, tokens_out, cost],
        )
        log.sql.execute(
            "INSERT INTO events (run_id, seq, type, at, turn, tool, latency_ms, status) "
            "VALUES (?, 2, 'tool_call', ?, 1, 'lookup', 5, 'ok')",
            [run_id, started],
        )
        log.sql.execute(
            "INSERT INTO event_payloads (run_id, seq, payload) VALUES (?, 1, '{}'), (?, 2, '{}')",
            [run_id, run_id],
        )
    # a live replay: its spend is left out unless asked for
    log.sql.execute(
        "INSERT INTO runs (id, kind, target, agent, env, status, model, started_at, latency_ms, "
        "cost_usd, is_replay, replay_of) VALUES ('01E', 'agent', 'agent/support', 'support', "
        "'default', 'succeeded', 'openai/m', '2026-11-03T10:00:00.000Z', 50, 1.0, 1, '01A')"
    )
    log.close()
    return tmp_path


def test_stats_group_and_aggregate(workspace):
    context = Context(workspace=workspace)
    (total,) = context.stats().records()
    assert total["runs"] == 4 and total["success_rate"] == 0.75
    assert total["p50_ms"] == 250.0 and total["tokens"] == 47
    assert total["cost_usd"] == pytest.approx(0.53) and total["cost_unknown"] == 1
    by_agent = {r["agent"]: r for r in context.stats(["agent", "model"]).records()}
    assert set(by_agent) == {"billing", "support"}
    rows = context.stats(["agent", "model"]).records()
    support_openai = next(r for r in rows if r["agent"] == "support" and r["model"] == "openai/m")
    assert support_openai["runs"] == 2 and support_openai["success_rate"] == 0.5
    by_day = context.stats(["day"]).records()
    assert [(r["day"], r["runs"]) for r in by_day] == [("2026-11-01", 2), ("2026-11-02", 2)]
    by_label = context.stats(["label:team"]).records()
    assert [(r["label:team"], r["runs"]) for r in by_label] == [("cx", 3), (None, 1)]
    assert context.stats(include_replays=True).records()[0]["runs"] == 5
    assert context.stats(since="2026-11-02").records()[0]["runs"] == 2
    with pytest.raises(UsageError, match="not a dimension"):
        context.stats(["colour"])
    with pytest.raises(UsageError, match="--since"):
        context.stats(since="yesterday")


def test_sql_over_the_views_and_exports(workspace, tmp_path):
    context = Context(workspace=workspace)
    table = context.query("SELECT tool, count(*) AS n FROM tool_calls GROUP BY tool")
    assert table.records() == [{"tool": "lookup", "n": 4}]
    calls = context.query("SELECT sum(input_tokens) AS t FROM model_calls").records()
    assert calls == [{"t": 36}]
    with pytest.raises(UsageError, match="not valid SQL"):
        context.query("SELEC 1")
    for sql, refusal in [
        ("SELECT 1; SELECT 2", "one statement"),
        ("DELETE FROM runs", "only reads"),
        ("ATTACH '/tmp/other.db'", "only reads"),
        ("SELECT * FROM read_text('/etc/hostname')", "disabled"),
        ("SELECT * FROM read_csv('https://example.com/x.csv')", "disabled"),
        # past the views: other schemas and tables of the database, SQL given as text
        (
            "SELECT * FROM postgres_query('logs', 'SELECT * FROM afctl_state.api_keys')",
            "postgres_query is refused",
        ),
        ("SELECT (SELECT count(*) FROM sqlite_scan('x.db', 't'))", "sqlite_scan is refused"),
        ("SELECT * FROM query('SELECT 1')", "query is refused"),
    ]:
        with pytest.raises(UsageError, match=refusal):
            context.query(sql)
    assert context.export("runs", tmp_path / "out" / "runs.csv", "csv") == 5
    assert (tmp_path / "out" / "runs.csv").read_text().startswith("id,kind,target")
    assert context.export("events", tmp_path / "events.jsonl", "jsonl", since="2026-11-02") == 4
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[0])["run_id"] in ("01C", "01D")
    assert context.export("model_calls", tmp_path / "m.parquet", "parquet") == 4
    assert (tmp_path / "m.parquet").read_bytes()[:4] == b"PAR1"


def test_the_cli(workspace):
    stats = invoke(["stats", "--by", "agent", "--workspace", str(workspace)])
    assert stats.exit_code == 0 and stats.stdout.splitlines()[0].split()[:3] == [
        "AGENT",
        "RUNS",
        "SUCCESS_RATE",
    ]
    as_csv = invoke(
        ["query", "SELECT id FROM runs ORDER BY id", "-o", "csv", "--workspace", str(workspace)]
    )
    assert as_csv.stdout.split() == ["id", "01A", "01B", "01C", "01D", "01E"]
    sizes = invoke(["logs", "stats", "-o", "json", "--workspace", str(workspace)])
    tables = json.loads(sizes.stdout)["tables"]
    assert tables["runs"]["rows"] == 5 and tables["events"]["rows"] == 8


def test_prune_keeps_what_it_is_asked_to_and_vacuum_shrinks(workspace, backend):
    log = PromptLog.open(workspace / ".afctl", StorageSettings.from_env())
    assert (
        log.maintenance.prune("2026-11-02T00:00:00.000Z", keep_failed=True) == 1
    )  # 01A; 01B failed
    assert {r.id for r in log.runs(limit=10)} == {"01B", "01C", "01D", "01E"}
    assert log.maintenance.prune("2026-11-02T00:00:00.000Z") == 1  # now 01B
    left = {r[0] for r in log.sql.execute("SELECT DISTINCT run_id FROM events")}
    assert left == {"01C", "01D"}
    assert (
        log.sql.execute(
            "SELECT count(*) FROM event_payloads WHERE run_id IN ('01A', '01B')"
        ).fetchone()[0]
        == 0
    )
    log.maintenance.vacuum()
    log.close()
    if backend == "sqlite":
        check = sqlite3.connect(workspace / ".afctl" / "logs.db").execute("PRAGMA integrity_check")
        assert check.fetchone()[0] == "ok"
    pruned = invoke(["logs", "prune", "--older-than", "1d", "--workspace", str(workspace)])
    assert pruned.exit_code == 0 and "pruned 3 runs" in pruned.stdout
    vacuumed = invoke(["logs", "vacuum", "--workspace", str(workspace)])
    assert vacuumed.exit_code == 0 and "vacuumed:" in vacuumed.stdout


@pytest.mark.usefixtures("backend")
@pytest.mark.sqlite_only  # a PostgreSQL log exists once migrated
def test_no_log_is_a_clear_error(tmp_path):
    with pytest.raises(UsageError, match="no prompt log yet"):
        Context(workspace=tmp_path / "none").stats()


@given(st.text(max_size=12) | st.from_regex(r"\A[0-9]{1,12}[smhdw]\Z"))
def test_any_since_is_a_timestamp_or_a_usage_error(text):
    from afctl.durations import since_timestamp

    try:
        stamp = since_timestamp(text, datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC))
    except UsageError:
        return
    assert len(stamp) >= 10 and stamp[:4].isdigit() and stamp[4] == "-"

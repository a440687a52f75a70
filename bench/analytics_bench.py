"""Benchmark: `afctl stats --by agent,model` over 1,000,000 runs (with events) through DuckDB,
beside the same aggregate written directly in SQLite (percentiles by window functions), in one
run. Target: afctl <= 0.25x the SQLite query time.

Usage: python bench/analytics_bench.py [--runs 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

SQLITE_STATS = """
WITH ranked AS (
    SELECT agent, model, status, latency_ms, input_tokens, output_tokens, cost_usd,
           row_number() OVER (PARTITION BY agent, model ORDER BY latency_ms) AS r,
           count(*) OVER (PARTITION BY agent, model) AS n
    FROM runs WHERE coalesce(is_replay, 0) = 0
)
SELECT agent, model, count(*) AS runs,
       round(avg(CASE WHEN status = 'succeeded' THEN 1.0 ELSE 0.0 END), 4) AS success_rate,
       max(CASE WHEN r = CAST(0.50 * (n - 1) AS INTEGER) + 1 THEN latency_ms END) AS p50_ms,
       max(CASE WHEN r = CAST(0.95 * (n - 1) AS INTEGER) + 1 THEN latency_ms END) AS p95_ms,
       max(CASE WHEN r = CAST(0.99 * (n - 1) AS INTEGER) + 1 THEN latency_ms END) AS p99_ms,
       sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens,
       round(sum(cost_usd), 6) AS cost_usd
FROM ranked GROUP BY agent, model ORDER BY agent, model
"""


def generate(workspace: Path, runs: int, rng: random.Random) -> None:
    from afctl.promptlog.store import PromptLog

    log = PromptLog.open(workspace)
    agents = [f"agent-{i}" for i in range(20)]
    models = ["openai/gpt-4.1-mini", "openai/gpt-4.1", "anthropic/claude-haiku-4-5",
              "anthropic/claude-sonnet-4-5", "ollama/llama3.2"]  # fmt: skip
    statuses = ["succeeded"] * 18 + ["failed", "blocked"]
    conn = log.conn
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN")
    batch_runs, batch_events = [], []
    for number in range(runs):
        run_id = f"01BENCH{number:019d}"
        day = 1 + number * 28 // runs
        started = f"2026-10-{day:02d}T{number % 24:02d}:00:00.000Z"
        agent, model = rng.choice(agents), rng.choice(models)
        tokens_in, tokens_out = rng.randint(50, 4000), rng.randint(10, 800)
        latency = rng.lognormvariate(7, 0.6)
        status = rng.choice(statuses)
        cost = tokens_in * 1e-6 + tokens_out * 4e-6
        batch_runs.append((run_id, "agent", f"agent/{agent}", agent, "default", status, model,
                           started, latency, 2, 1, tokens_in, tokens_out, cost, 0))  # fmt: skip
        for seq, kind in ((1, "model_call"), (2, "tool_call"), (3, "model_call")):
            batch_events.append((run_id, seq, kind, started, 1 + seq // 3, model,
                                 "lookup" if kind == "tool_call" else None, "ok", latency / 3,
                                 tokens_in // 2, tokens_out // 2, None))  # fmt: skip
        if len(batch_runs) >= 50_000:
            _flush(conn, batch_runs, batch_events)
    _flush(conn, batch_runs, batch_events)
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    log.close()


def _flush(conn, runs, events) -> None:  # type: ignore[no-untyped-def]
    conn.executemany(
        "INSERT INTO runs (id, kind, target, agent, env, status, model, started_at, latency_ms, "
        "turns, tool_calls, input_tokens, output_tokens, cost_usd, is_replay) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        runs,
    )
    conn.executemany(
        "INSERT INTO events (run_id, seq, type, at, turn, model, tool, status, latency_ms, "
        "input_tokens, output_tokens, cost_usd) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        events,
    )
    runs.clear()
    events.clear()


def main() -> None:
    import sqlite3

    from afctl.context import Context

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="afctl-analytics-bench-"))
    try:
        started = time.perf_counter()
        generate(root / ".afctl", args.runs, random.Random(3))
        print(f"generated {args.runs:,} runs with 3 events each in "
              f"{time.perf_counter() - started:.0f} s")  # fmt: skip
        context = Context(workspace=root)
        ours, bare = [], []
        for _ in range(args.repeat):
            begin = time.perf_counter()
            table = context.stats(["agent", "model"])
            ours.append(time.perf_counter() - begin)
            begin = time.perf_counter()
            connection = sqlite3.connect(root / ".afctl" / "logs.db")
            rows = connection.execute(SQLITE_STATS).fetchall()
            connection.close()
            bare.append(time.perf_counter() - begin)
        assert len(table.rows) == len(rows) == 100, (len(table.rows), len(rows))
        ours_s, bare_s = statistics.median(ours), statistics.median(bare)
        print(f"SQLite, the same aggregate : {bare_s:6.2f} s")
        print(f"afctl stats --by agent,model: {ours_s:6.2f} s  -> {ours_s / bare_s:.2f}x "
              "(target <= 0.25x)")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

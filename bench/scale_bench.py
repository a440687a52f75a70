"""Benchmark: past one machine (issue 18). Three figures, each beside its reference, measured
in the same run on a throwaway PostgreSQL and Redis (Debian's servers, on loopback):

1. An eval of --cases cases against the loopback model server (100 ms per response): in-process
   (concurrency 50) beside 1, 2 and 4 `afctl worker`s (50 runs in flight each). On a 2-core
   machine the curve flattens once the cores are busy. The queue's cost per case: the CPU
   time of the queueing process and the worker together, less the in-process eval's, per case
   (target <= 2 ms), beside Celery's own floor (a no-op task with the same settings over the
   same Redis, bench/celery_floor.py).
2. Prompt-log write throughput: the same eval on local/echo (no latency), in-process, with the
   log in SQLite and in PostgreSQL (runs per second, every run and event written).
3. `afctl stats --by agent` over --runs runs in PostgreSQL, through DuckDB's postgres scanner,
   beside the same aggregate in PostgreSQL's own SQL (medians of 3).

Usage: python bench/scale_bench.py [--cases 2000] [--runs 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
AFCTL = str(Path(sys.executable).parent / "afctl")


def make_repo(root: Path, base_url: str | None, cases: int) -> Path:
    from afctl.testing import write_repo

    rows = "".join(json.dumps({"id": f"q{i}", "input": f"question {i}"}) + "\n"
                   for i in range(cases))  # fmt: skip
    model = (f"spec: {{provider: openai, model: bench-model, base_url: '{base_url}', "
             "api_key_env: BENCH_KEY}\n" if base_url else
             "spec: {provider: local, model: echo}\n")  # fmt: skip
    answer = "shipped" if base_url else "question"
    return write_repo(root, {
        ".afctl/.gitignore": "*\n",
        "all.yaml": "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: main}\n" + model
        + "---\napiVersion: afctl/v1\nkind: Agent\nmetadata: {name: support}\n"
          "spec: {model: main, instructions: 'You answer questions about Acme orders.'}\n",
        "evals/suite.yaml": (
            "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: bench}\n"
            "spec:\n  target: {agent: support}\n  concurrency: 50\n"
            f"  defaults: {{assert: [{{type: contains, value: {answer}}}]}}\n"
            "  cases:\n    - {dataset: cases.jsonl}\n"
        ),
        "evals/cases.jsonl": rows,
    })  # fmt: skip


def cpu_of(pid: int) -> float:
    """User + system CPU seconds of a live process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def eval_cpu(repo: Path, env: dict[str, str], *extra: str) -> tuple[float, float]:
    """(seconds, CPU seconds) of the eval, its CPU read from the kernel's account of it."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([AFCTL, "eval", "evals/", "--no-cache", "-o", "json", *extra],
                          cwd=repo, env=env, capture_output=True, text=True)  # fmt: skip
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"eval failed: {done.stderr[-2000:]}")
    (report,) = json.loads(done.stdout)
    assert report["passed"] and report["errors"] == 0, report["verdict"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu


def start_workers(repo: Path, env: dict[str, str], count: int) -> list[subprocess.Popen[str]]:
    workers = []
    for index in range(count):
        log = (repo / f"w{index}.log").open("w")
        workers.append(subprocess.Popen([AFCTL, "worker", "-c", "50", "-n", f"w{index}"],
                                        cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT,
                                        text=True))  # fmt: skip
    for index in range(count):
        deadline = time.monotonic() + 30
        while "afctl worker" not in (repo / f"w{index}.log").read_text():
            assert time.monotonic() < deadline, "a worker did not start"
            time.sleep(0.05)
    return workers


def stop_workers(workers: list[subprocess.Popen[str]]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        worker.wait(60)


def fill_runs(url: str, runs: int) -> None:
    """`runs` runs in the log, by COPY (six agents, three models, 90% succeeded)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection, connection.cursor() as cursor:
        with cursor.copy("COPY afctl_log.runs (id, kind, target, agent, env, status, model, "
                         "started_at, latency_ms, input_tokens, output_tokens, cost_usd, "
                         "is_replay) FROM STDIN") as copy:  # fmt: skip
            for index in range(runs):
                agent = f"agent{index % 6}"
                copy.write_row((f"R{index:09d}", "agent", f"agent/{agent}", agent, "default",
                                "failed" if index % 10 == 0 else "succeeded",
                                f"m{index % 3}", f"2026-11-{1 + index % 28:02d}T10:00:00.000Z",
                                float(100 + index % 900), 100 + index % 50, 20 + index % 10,
                                0.0001 * (index % 7), 0))  # fmt: skip
        connection.execute("ANALYZE afctl_log.runs")


PG_STATS = (
    "SELECT coalesce(agent, target) AS agent, count(*) AS runs, "
    "round(avg(CASE WHEN status = 'succeeded' THEN 1.0 ELSE 0.0 END), 4) AS success_rate, "
    "percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_ms, "
    "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_ms, "
    "percentile_cont(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99_ms, "
    "sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)) AS tokens, "
    "round(CAST(sum(cost_usd) AS numeric), 6) AS cost_usd "
    "FROM afctl_log.runs WHERE is_replay = 0 GROUP BY 1 ORDER BY 1"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()

    from tests.postgres import PostgresServer
    from tests.redis_server import RedisServer

    pg, redis_server = PostgresServer(), RedisServer()
    work = Path(tempfile.mkdtemp(prefix="afctl-scale-bench-"))
    serve = [sys.executable, "-m", "afctl.fake_llm", "--latency", str(args.latency), "--tool",
             "", "--answer", "Order 7 has shipped."]  # fmt: skip
    model = subprocess.Popen(serve, stdout=subprocess.PIPE, text=True)
    try:
        assert model.stdout is not None
        base_url = model.stdout.readline().strip() + "/v1"
        url = pg.database()
        env = {**os.environ, "BENCH_KEY": "sk-bench", "AFCTL_PLUGINS": "0",
               "AFCTL_DATABASE_URL": url, "AFCTL_BROKER_URL": redis_server.url()}  # fmt: skip
        repo = make_repo(work / "slow", base_url, args.cases)
        for command in (["db", "migrate"], ["apply", "-f", ".", "--yes"]):
            subprocess.run([AFCTL, *command], cwd=repo, env=env, check=True,
                           capture_output=True)  # fmt: skip

        # 1. in-process vs workers
        local_s, local_cpu = eval_cpu(repo, env)
        print(f"eval of {args.cases} cases, {args.latency * 1000:.0f} ms per response "
              f"(ideal at 50 in flight: {args.cases * args.latency / 50:.1f} s):")  # fmt: skip
        print(f"  in-process (concurrency 50)   : {local_s:6.2f} s   CPU {local_cpu:6.2f} s")
        overhead = None
        for count in [int(c) for c in args.workers.split(",")]:
            workers = start_workers(repo, env, count)
            try:
                before = sum(cpu_of(w.pid) for w in workers)
                seconds, caller_cpu = eval_cpu(repo, env, "--executor", "celery")
                worker_cpu = sum(cpu_of(w.pid) for w in workers) - before
            finally:
                stop_workers(workers)
            total = caller_cpu + worker_cpu
            print(f"  {count} worker{'s' if count > 1 else ' '} (50 in flight each)  : "
                  f"{seconds:6.2f} s   CPU {total:6.2f} s (caller {caller_cpu:.2f}, "
                  f"workers {worker_cpu:.2f})")  # fmt: skip
            if count == 1:
                overhead = (total - local_cpu) / args.cases * 1000
        floor = json.loads(subprocess.run(
            [sys.executable, str(ROOT / "bench" / "celery_floor.py"), redis_server.url(),
             str(args.cases)], check=True, capture_output=True, text=True).stdout)  # fmt: skip
        if overhead is not None:
            print(f"  the queue's CPU per case: {overhead:.2f} ms (1 worker vs in-process; "
                  "target <= 2 ms)")  # fmt: skip
        print(f"  reference, Celery's own floor: {floor['send_ms'] + floor['worker_ms']:.2f} ms "
              f"per task (send {floor['send_ms']:.2f}, worker {floor['worker_ms']:.2f}: a no-op "
              "task, same settings and Redis)")  # fmt: skip

        # 2. prompt-log writes, SQLite vs PostgreSQL
        fast = make_repo(work / "fast", None, args.cases)
        rates: dict[str, list[float]] = {"sqlite": [], "postgresql": []}
        local_env = {k: v for k, v in env.items() if k not in ("AFCTL_DATABASE_URL",
                                                               "AFCTL_BROKER_URL")}  # fmt: skip
        fast_url = pg.database()
        pg_env = {**local_env, "AFCTL_DATABASE_URL": fast_url}
        for current in (local_env, pg_env):
            for command in (["db", "migrate"], ["apply", "-f", ".", "--yes"]):
                subprocess.run([AFCTL, *command], cwd=fast, env=current, check=True,
                               capture_output=True)  # fmt: skip
        for index in range(3):
            order = [("sqlite", local_env), ("postgresql", pg_env)]
            for name, current in order if index % 2 == 0 else reversed(order):
                seconds, _ = eval_cpu(fast, current)
                rates[name].append(args.cases / seconds)
        print(f"prompt-log writes: the same {args.cases}-case eval on local/echo, in-process "
              "(3 rounds, medians):")  # fmt: skip
        for name in ("sqlite", "postgresql"):
            print(f"  {name:10}: {statistics.median(rates[name]):7.0f} runs/s")
        ratio = statistics.median(rates["postgresql"]) / statistics.median(rates["sqlite"])
        print(f"  PostgreSQL / SQLite: {ratio:.2f}x")

        # 3. stats over many runs
        big_url = pg.database()
        big_env = {**local_env, "AFCTL_DATABASE_URL": big_url}
        subprocess.run([AFCTL, "db", "migrate"], cwd=fast, env=big_env, check=True,
                       capture_output=True)  # fmt: skip
        started = time.perf_counter()
        fill_runs(big_url, args.runs)
        filled = time.perf_counter() - started
        print(f"stats --by agent over {args.runs:,} runs in PostgreSQL (filled by COPY in "
              f"{filled:.1f} s; 3 rounds, medians):")  # fmt: skip
        duck, native = [], []
        import psycopg

        from afctl.analytics.logs import LogAnalytics
        from afctl.storage.settings import DatabaseUrl

        for _ in range(3):
            started = time.perf_counter()
            with LogAnalytics(Path("/nonexistent"), DatabaseUrl(big_url, "bench")) as analytics:
                table = analytics.stats(["agent"])
            duck.append(time.perf_counter() - started)
            assert len(table.rows) == 6 and sum(r[1] for r in table.rows) == args.runs
            started = time.perf_counter()
            with psycopg.connect(big_url) as connection:
                rows = connection.execute(PG_STATS).fetchall()
            native.append(time.perf_counter() - started)
            assert len(rows) == 6
        print(f"  DuckDB postgres scanner : {statistics.median(duck):6.2f} s")
        print(f"  PostgreSQL's own SQL    : {statistics.median(native):6.2f} s   -> DuckDB "
              f"{statistics.median(duck) / statistics.median(native):.2f}x")  # fmt: skip
    finally:
        model.terminate()
        pg.stop()
        redis_server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: an eval of 1,000 cases against the loopback server (100 ms per response) at
concurrency 50, beside a hand-written asyncio loop making the same calls with the bare openai
SDK; and a 20,000-case eval's memory as it goes.

Each side runs in its own process (so peak memory is its own) and times itself from the
moment it starts working: afctl's figure covers loading the suite and its 1,000-row dataset,
validating the manifests, every run with its prompt log, scoring and storing the eval (the
response cache is off, so every case calls the server). The sides alternate over rounds on a
noisy machine; figures are medians. The ideal is cases x latency / concurrency = 2.0 s.
Target: afctl <= 1.15x the bare loop; memory flat over a 20,000-case eval.

Usage: python bench/eval_bench.py [--cases 1000] [--rounds 3] [--big 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

INSTRUCTIONS = "You answer questions about Acme orders."


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def bare(base_url: str, cases: int, concurrency: int) -> int:
    """The loop a developer would write: a semaphore, the SDK client, a contains check."""
    from openai import AsyncOpenAI

    client = AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=2)
    gate = asyncio.Semaphore(concurrency)

    async def case(index: int) -> bool:
        async with gate:
            response = await client.chat.completions.create(
                model="bench-model",
                messages=[
                    {"role": "system", "content": INSTRUCTIONS},
                    {"role": "user", "content": f"question {index}"},
                ],
            )
        return "shipped" in (response.choices[0].message.content or "")

    passed = sum(await asyncio.gather(*(case(i) for i in range(cases))))
    await client.close()
    return passed


def make_repo(root: Path, base_url: str, cases: int, concurrency: int) -> Path:
    from afctl.testing import write_repo

    rows = "".join(
        json.dumps({"id": f"q{i}", "input": f"question {i}"}) + "\n" for i in range(cases)
    )
    return write_repo(
        root,
        {
            ".afctl/.gitignore": "*\n",
            "all.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: main}\n"
                f"spec: {{provider: openai, model: bench-model, base_url: '{base_url}', "
                "api_key_env: BENCH_KEY}\n---\n"
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: support}\n"
                f"spec: {{model: main, instructions: '{INSTRUCTIONS}'}}\n"
            ),
            "evals/suite.yaml": (
                "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: bench}\n"
                f"spec:\n  target: {{agent: support}}\n  concurrency: {concurrency}\n"
                "  defaults: {assert: [{type: contains, value: shipped}]}\n"
                "  cases:\n    - {dataset: cases.jsonl}\n"
            ),
            "evals/cases.jsonl": rows,
        },
    )


def side(args: argparse.Namespace) -> None:
    """One measurement, in this process; prints its figures as JSON."""
    os.environ["BENCH_KEY"] = "sk-bench"
    os.environ["AFCTL_PLUGINS"] = "0"
    if args.side == "bare":
        import openai

        started = time.perf_counter()
        passed = asyncio.run(bare(args.base_url, args.cases, args.concurrency))
        seconds = time.perf_counter() - started
        print(json.dumps({"seconds": seconds, "passed": passed, "peak_mb": peak_mb()}))
        return
    from afctl.console import Console
    from afctl.context import Context

    work = Path(tempfile.mkdtemp(prefix="afctl-eval-bench-"))
    try:
        repo = make_repo(work, args.base_url, args.cases, args.concurrency)
        samples: list[tuple[int, float]] = []
        step = max(1, args.cases // 20)

        class Sampling(Console):
            def progress(self, done: int, total: int, label: str) -> None:
                if done % step == 0 or done == total:
                    samples.append((done, rss_mb()))

        # modules load before the clock, as the bare side imports openai before its own
        import openai  # noqa: F401

        import afctl.eval.runner
        import afctl.manifests.validate
        import afctl.providers.openai_chat
        import afctl.runtime.agent  # noqa: F401

        started = time.perf_counter()
        (result,) = Context(workspace=repo, console=Sampling()).evaluate([str(repo)], cache=False)
        seconds = time.perf_counter() - started
        assert len(result.cases) == args.cases
        passed = sum(c.passed for c in result.cases)
        print(json.dumps({"seconds": seconds, "passed": passed, "peak_mb": peak_mb(),
                          "samples": samples}))  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(which: str, base_url: str, cases: int, concurrency: int) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, __file__, "--side", which, "--base-url", base_url,
         "--cases", str(cases), "--concurrency", str(concurrency)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{which} failed:\n{done.stderr}")
    figures: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--big", type=int, default=20000, help="cases of the memory run (0: skip)")
    parser.add_argument("--side", choices=["bare", "afctl"], help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        side(args)
        return
    # the fake API runs in its own process, with its latency, as a real server would
    server = subprocess.Popen(
        [sys.executable, "-m", "afctl.fake_llm", "--latency", str(args.latency), "--tool", "",
         "--answer", "Order 7 has shipped."],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip() + "/v1"
        measure("bare", base_url, 100, args.concurrency)  # warm the machine's caches
        bare_s, ours_s, ratios, bare_mb, ours_mb = [], [], [], [], []
        for index in range(args.rounds):
            order = ["bare", "afctl"] if index % 2 == 0 else ["afctl", "bare"]
            figures = {
                which: measure(which, base_url, args.cases, args.concurrency) for which in order
            }
            for which in ("bare", "afctl"):
                assert figures[which]["passed"] == args.cases, figures[which]
            bare_s.append(float(figures["bare"]["seconds"]))  # type: ignore[arg-type]
            ours_s.append(float(figures["afctl"]["seconds"]))  # type: ignore[arg-type]
            bare_mb.append(float(figures["bare"]["peak_mb"]))  # type: ignore[arg-type]
            ours_mb.append(float(figures["afctl"]["peak_mb"]))  # type: ignore[arg-type]
            ratios.append(ours_s[-1] / bare_s[-1])
        ideal = args.cases * args.latency / args.concurrency
        print(
            f"{args.cases} cases, {args.latency * 1000:.0f} ms per response, concurrency "
            f"{args.concurrency}; {args.rounds} rounds, alternating; ideal {ideal:.2f} s"
        )
        print(
            f"bare openai SDK loop : {statistics.median(bare_s):6.2f} s   peak "
            f"{statistics.median(bare_mb):6.1f} MB"
        )
        print(f"afctl eval           : {statistics.median(ours_s):6.2f} s   peak "
              f"{statistics.median(ours_mb):6.1f} MB  -> {statistics.median(ratios):.2f}x "
              f"(target <= 1.15x; rounds {min(ratios):.2f}x-{max(ratios):.2f}x)")  # fmt: skip
        if args.big:
            big = measure("afctl", base_url, args.big, args.concurrency)
            samples = [(int(d), float(m)) for d, m in big["samples"]]  # type: ignore[union-attr]
            first = next(s for s in samples if s[0] >= args.big // 10)
            last = samples[-1]
            growth = (last[1] - first[1]) / max(1, last[0] - first[0]) * 1000
            print(f"{args.big}-case eval: {float(big['seconds']):.1f} s; RSS "  # type: ignore[arg-type]
                  + ", ".join(f"{d}: {m:.0f} MB" for d, m in samples[:: max(1, len(samples) // 5)])
                  + f"; after the first 10%: {growth * 1024:.0f} KB per 1,000 cases "
                  "(the kept case results)")  # fmt: skip
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()

"""Benchmark: afctl's per-run overhead against a hand-written loop with the bare openai SDK.

Both drive the same loopback server (zero latency, in its own process) through the official
SDK, for runs of two model calls and one tool call. afctl's figure includes everything a run
does: rendering the instructions, validating tool arguments, running the python tool, and
writing every turn to the prompt log (SQLite). The two alternate run by run, so both see the
same moments of a noisy machine; each round reports median times per run, and the ratio is the
median over rounds.
Target: afctl's time per run <= 1.3x the bare loop's.

Usage: python bench/run_bench.py [--runs 200] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TOOLS_PY = '''
def lookup_order(order_id: str) -> dict:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return {"order_id": order_id, "status": "shipped"}
'''


def lookup_order(order_id: str) -> dict[str, str]:
    return {"order_id": order_id, "status": "shipped"}


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "lookup_order",
            "description": "Look up an order.",
            "parameters": {
                "type": "object",
                "properties": {"order_id": {"type": "string", "description": "The order number."}},
                "required": ["order_id"],
            },
        },
    }
]


async def bare_run(client: Any) -> None:
    """One run as a developer would write it by hand with the openai SDK."""
    messages: list[Any] = [
        {"role": "system", "content": "You help customers of Acme."},
        {"role": "user", "content": "where is order 123?"},
    ]
    while True:
        response = await client.chat.completions.create(
            model="bench-model", messages=messages, tools=TOOLS, temperature=0.2
        )
        message = response.choices[0].message
        if not message.tool_calls:
            return
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            result = lookup_order(**json.loads(call.function.arguments))
            messages.append(
                {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
            )


async def measure(repo: Path, base_url: str, runs: int) -> tuple[list[float], list[float]]:
    """Per-run seconds of the bare loop and of afctl, one of each in turn (the order swapping
    every time), so both see the same moment of a noisy machine."""
    from openai import AsyncOpenAI

    from afctl.context import Context
    from afctl.providers.pool import ProviderPool
    from afctl.runtime.agent import AgentRun, LogRecorder
    from afctl.runtime.environment import Catalog, RunEnvironment
    from afctl.safety.secrets import Secrets

    client = AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    context = Context(workspace=repo)
    catalog = Catalog.of((m.kind, m.name, m.data) for m in context.load(str(repo)))
    pool = ProviderPool()  # SDK clients shared by the runs, as the bare loop shares its client

    async def afctl_run(log: Any) -> None:
        environment = RunEnvironment(repo, Secrets(), catalog, providers=pool)
        result = await AgentRun("support", environment, LogRecorder(log)).run("where is order 123?")
        assert result.ok and result.tool_calls == 1 and result.turns == 2, result

    bare: list[float] = []
    ours: list[float] = []
    with context.prompt_log() as log:
        for _ in range(10):  # warm up connections and caches
            await bare_run(client)
            await afctl_run(log)
        for index in range(runs):
            pair = [(bare, bare_run(client)), (ours, afctl_run(log))]
            for times, coroutine in pair if index % 2 else reversed(pair):
                started = time.perf_counter()
                await coroutine
                times.append(time.perf_counter() - started)
    await pool.aclose()
    await client.close()
    return bare, ours


def make_repo(root: Path, base_url: str) -> Path:
    from afctl.testing import write_repo

    return write_repo(
        root,
        {
            ".afctl/.gitignore": "*\n",
            "shop/__init__.py": "",
            "shop/orders.py": TOOLS_PY,
            "all.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: main}\n"
                f"spec: {{provider: openai, model: bench-model, base_url: '{base_url}', "
                "api_key_env: BENCH_KEY}\n---\n"
                "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: lookup_order}\n"
                "spec: {type: python, entrypoint: 'shop.orders:lookup_order'}\n---\n"
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: support}\n"
                "spec: {model: main, instructions: 'You help customers of {{ vars.company }}.', "
                "vars: {company: Acme}, tools: [lookup_order], params: {temperature: 0.2}}\n"
            ),
        },
    )


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    os.environ["BENCH_KEY"] = "sk-bench"
    # the fake API runs in its own process, as a real server would: in-process threads would
    # compete with the client for the GIL and blur the comparison
    server = subprocess.Popen(
        [sys.executable, "-m", "afctl.fake_llm"], stdout=subprocess.PIPE, text=True
    )
    work = Path(tempfile.mkdtemp(prefix="afctl-run-bench-"))
    try:
        assert server.stdout is not None
        base_url = server.stdout.readline().strip() + "/v1"
        repo = make_repo(work, base_url)
        bare, ours, ratios = [], [], []
        for _ in range(args.repeat):
            round_bare, round_ours = asyncio.run(measure(repo, base_url, args.runs))
            bare.append(statistics.median(round_bare))
            ours.append(statistics.median(round_ours))
            ratios.append(ours[-1] / bare[-1])
        bare_s, ours_s = statistics.median(bare), statistics.median(ours)
        print(f"{args.runs} runs x {args.repeat}; each run: 2 model calls + 1 tool call, loopback;"
              " interleaved run by run, medians")  # fmt: skip
        print(f"bare openai SDK loop : {bare_s * 1000:7.2f} ms/run  ({1 / bare_s:6.1f} runs/s)")
        print(f"afctl (+ prompt log) : {ours_s * 1000:7.2f} ms/run  ({1 / ours_s:6.1f} runs/s)"
              f"  -> {statistics.median(ratios):.2f}x  (target <= 1.30x;"
              f" rounds {min(ratios):.2f}x-{max(ratios):.2f}x)")  # fmt: skip
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

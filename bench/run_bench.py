"""Benchmark: afctl's per-run overhead against a hand-written loop with the bare openai SDK.

Both drive the same loopback server (zero latency) through the official SDK, for runs of two
model calls and one tool call. afctl's figure includes everything a run does: rendering the
instructions, validating tool arguments, running the python tool, and writing every step to
the prompt log (SQLite). Printed as runs per second, interleaved, medians.
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


async def bare_loop(base_url: str, runs: int) -> float:
    """What a developer would write by hand with the openai SDK."""
    from openai import AsyncOpenAI

    tools = [
        {
            "type": "function",
            "function": {
                "name": "lookup_order",
                "description": "Look up an order.",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "order_id": {"type": "string", "description": "The order number."}
                    },
                    "required": ["order_id"],
                },
            },
        }
    ]
    client = AsyncOpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    started = time.perf_counter()
    for _ in range(runs):
        messages: list[Any] = [
            {"role": "system", "content": "You help customers of Acme."},
            {"role": "user", "content": "where is order 123?"},
        ]
        while True:
            response = await client.chat.completions.create(
                model="bench-model", messages=messages, tools=tools, temperature=0.2
            )
            message = response.choices[0].message
            if not message.tool_calls:
                break
            messages.append(message.model_dump(exclude_none=True))
            for call in message.tool_calls:
                result = lookup_order(**json.loads(call.function.arguments))
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)}
                )
    elapsed = (time.perf_counter() - started) / runs
    await client.close()
    return elapsed


async def afctl_runs(repo: Path, runs: int) -> float:
    from afctl.context import Context
    from afctl.providers.pool import ProviderPool
    from afctl.runtime.agent import AgentRun, RunOptions
    from afctl.runtime.environment import Catalog, RunEnvironment
    from afctl.safety.secrets import Secrets

    context = Context(workspace=repo)
    catalog = Catalog.of((m.kind, m.name, m.data) for m in context.load(str(repo)))
    pool = ProviderPool()  # SDK clients shared by the runs, as the bare loop shares its client
    with context.prompt_log() as log:
        started = time.perf_counter()
        for _ in range(runs):
            environment = RunEnvironment(repo, Secrets(), catalog, pool)
            result = await AgentRun("support", environment, log, RunOptions()).run(
                "where is order 123?"
            )
            assert result.ok and result.tool_calls == 1 and result.turns == 2, result
        elapsed = (time.perf_counter() - started) / runs
    await pool.aclose()
    return elapsed


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
        asyncio.run(bare_loop(base_url, 5))  # warm up imports and connections
        asyncio.run(afctl_runs(repo, 5))
        bare, ours = [], []
        for _ in range(args.repeat):
            bare.append(asyncio.run(bare_loop(base_url, args.runs)))
            ours.append(asyncio.run(afctl_runs(repo, args.runs)))
        ratios = [o / b for o, b in zip(ours, bare, strict=True)]
        bare_s, ours_s = statistics.median(bare), statistics.median(ours)
        print(f"{args.runs} runs x {args.repeat}; each run: 2 model calls + 1 tool call, loopback")
        print(f"bare openai SDK loop : {bare_s * 1000:7.2f} ms/run  ({1 / bare_s:6.1f} runs/s)")
        print(f"afctl (+ prompt log) : {ours_s * 1000:7.2f} ms/run  ({1 / ours_s:6.1f} runs/s)"
              f"  -> {statistics.median(ratios):.2f}x  (target <= 1.30x)")  # fmt: skip
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

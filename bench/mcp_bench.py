"""Benchmark: an eval whose agent has an MCP tool it never calls, against the same eval
without the tool (issue 15 #2: the server used to start for every case).

Two repositories with the same 24-case suite and an offline scripted model that answers
without calling tools; one agent also lists an MCP Tool (a real stdio server written with
the official SDK, tests/mcp_server.py). `afctl eval --no-cache` runs as a command in each,
alternating, after one run that lets afctl learn the server's tool list. Target: with the
unused tool <= 1.2x without it (medians). The first run ever, which starts the server once to
list its tools, is shown too.

Usage: python bench/mcp_bench.py [--rounds 5] [--cases 24]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = Path(__file__).resolve().parents[1] / "tests" / "mcp_server.py"


def repository(root: Path, cases: int, with_mcp: bool) -> Path:
    from afctl.testing import write_repo

    tools = "[clock]" if with_mcp else "[]"
    files = {
        ".afctl/.gitignore": "*\n",
        "model.yaml": (
            "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
            "spec:\n  provider: local\n  model: scripted\n  script:\n"
            "    rules: [{turn: 1, reply: 'the answer'}]\n"
        ),
        "agent.yaml": (
            "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: helper}\n"
            f"spec: {{model: script, instructions: Help., tools: {tools}}}\n"
        ),
        "suite.yaml": (
            "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\nspec:\n"
            "  target: {agent: helper}\n  concurrency: 8\n  cases:\n"
            + "".join(
                f"    - {{id: c{i}, input: question {i}, assert: [{{type: contains, "
                "value: answer}]}\n"
                for i in range(cases)
            )
        ),
    }
    if with_mcp:
        files["tool.yaml"] = (
            "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: clock}\n"
            f"spec: {{type: mcp, transport: stdio, command: {sys.executable!r}, "
            f"args: [{str(SERVER)!r}], prefix: m_}}\n"
        )
    return write_repo(root, files)


def timed_eval(repo: Path) -> float:
    afctl = Path(sys.executable).parent / "afctl"
    started = time.perf_counter()
    done = subprocess.run([str(afctl), "eval", ".", "--no-cache"], cwd=repo,
                          capture_output=True, text=True)  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"eval failed in {repo}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", type=int, default=24)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="afctl-mcp-bench-"))
    try:
        plain = repository(root / "plain", args.cases, with_mcp=False)
        with_mcp = repository(root / "mcp", args.cases, with_mcp=True)
        first = timed_eval(with_mcp)  # learns the server's tools: starts it once
        plain_times, mcp_times = [], []
        for _ in range(args.rounds):
            plain_times.append(timed_eval(plain))
            mcp_times.append(timed_eval(with_mcp))
        base, measured = statistics.median(plain_times), statistics.median(mcp_times)
        ratio = measured / base
        print(f"{args.cases}-case eval, scripted model, `afctl eval --no-cache` as a command, "
              f"medians of {args.rounds} alternating rounds")  # fmt: skip
        print(f"without the MCP tool          : {base:6.2f} s")
        print(f"with an unused MCP tool       : {measured:6.2f} s  -> {ratio:.2f}x  "
              f"(target <= 1.20x; rounds {min(mcp_times) / max(plain_times):.2f}x-"
              f"{max(mcp_times) / min(plain_times):.2f}x)")  # fmt: skip
        print(f"first run ever (lists tools)  : {first:6.2f} s  (starts the server once)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

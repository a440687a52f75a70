"""Benchmark: how fast `afctl --help` and `afctl --version` start, beside a bare `python -c pass`.

The interpreter's own start-up is the floor nothing can beat; afctl's target is a median under
150 ms for `afctl --help`. Modules are byte-compiled once first, as for any installed package.

Usage: python bench/startup_bench.py [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    afctl = str(Path(sys.executable).parent / "afctl")
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "afctl --version": [afctl, "--version"],
        "afctl --help": [afctl, "--help"],
    }
    for command in commands.values():  # warm up: page cache and .pyc files
        run(command, env)
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):  # interleaved, so drift hits every command alike
        for name, command in commands.items():
            samples[name].append(run(command, env))
    floor = statistics.median(samples["python -c pass"])
    for name, values in samples.items():
        median = statistics.median(values)
        note = "  (target < 150 ms)" if name == "afctl --help" else ""
        print(f"{name:18s} median {median * 1000:6.1f} ms  ({median / floor:4.1f}x python){note}")


if __name__ == "__main__":
    main()

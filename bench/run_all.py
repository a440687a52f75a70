"""Run every benchmark in bench/ (`make bench`), one after the other."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = [
    "startup_bench.py",
    "validate_bench.py",
    "state_bench.py",
    "run_bench.py",
    "knowledge_bench.py",
    "replay_bench.py",
    "mcp_bench.py",
    "eval_bench.py",
    "analytics_bench.py",
    "serve_bench.py",
    "scale_bench.py",
]

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    for name in BENCHMARKS:
        print(f"\n== {name} ==", flush=True)
        subprocess.run([sys.executable, str(here / name), *sys.argv[1:]], check=True)

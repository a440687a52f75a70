"""Benchmark: plan and apply of a generated repository beside validating the same files.

Prints, in one run and as medians (the machines are noisy):
- validate of the files (in-process, cold: no cache), the reference;
- the first apply of every resource (all creates), into a fresh workspace;
- a plan when nothing changed, and a plan and an apply with 1% of the files changed.
Targets: a no-change plan <= 1.2x validate; an apply of all creates <= 1.5x validate.

Usage: python bench/state_bench.py [--count 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate


def timed(function, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from afctl.context import Context
    from afctl.manifests.validate import validate_paths

    work = Path(tempfile.mkdtemp(prefix="afctl-state-bench-"))
    try:
        repo = generate(work / "repo", args.count)
        validate_paths([str(repo)])  # warm up imports, schemas and the page cache
        validate_s, apply_s, plan_s = [], [], []
        for attempt in range(args.repeat):
            validate_s.append(timed(validate_paths, [str(repo)])[0])
            workspace = work / f"ws{attempt}"
            workspace.mkdir()
            seconds, outcome = timed(Context(workspace=workspace).apply, str(repo))
            assert outcome.plan.count("create") == args.count
            apply_s.append(seconds)
            seconds, plan = timed(Context(workspace=workspace).plan, str(repo))
            assert not plan.has_changes
            plan_s.append(seconds)
        files = sorted((repo / "tools").glob("*.yaml"))[: max(1, args.count // 100)]
        for path in files:
            path.write_text(path.read_text().replace("timeout_s: 10", "timeout_s: 12"))
        workspace = work / "ws0"
        changed_plan_s = [timed(Context(workspace=workspace).plan, str(repo))[0]]
        changed = Context(workspace=workspace).plan(str(repo)).count("update")
        changed_apply_s, _ = timed(Context(workspace=workspace).apply, str(repo))
        reference = statistics.median(validate_s)

        def paired(values: list[float]) -> float:
            # each run beside the validate run just before it, so drift hits both alike
            return statistics.median(v / r for v, r in zip(values, validate_s, strict=True))

        rows = [
            ("validate (cold, reference)", reference, 1.0, ""),
            ("apply, all creates", statistics.median(apply_s), paired(apply_s), "<= 1.50x"),
            ("plan, nothing changed", statistics.median(plan_s), paired(plan_s), "<= 1.20x"),
            (f"plan, {changed} changed", changed_plan_s[0], changed_plan_s[0] / reference, ""),
            (f"apply, {changed} changed", changed_apply_s, changed_apply_s / reference, ""),
        ]
        print(f"repository: {args.count:,} manifests; medians of {args.repeat}")
        for label, seconds, ratio, target in rows:
            suffix = f"  (target {target})" if target else ""
            print(f"{label:30s} {seconds:7.3f} s  {ratio:5.2f}x validate{suffix}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

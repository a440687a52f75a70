"""Benchmark: `afctl validate` on a generated repository beside a bare libyaml parse.

Prints, for the same files and in the same run (medians; the machines are noisy):
- the bare parse: PyYAML's CSafeLoader (libyaml) loading every file, reading included;
- afctl's full validation, cold (no cache), in-process: YAML with positions, JSON Schema,
  semantic and cross-file checks; target <= 2x the bare parse;
- `afctl validate -f REPO` as a command, cold and then with nothing changed (the cache);
  target for the unchanged case <= 0.5 s.

Usage: python bench/validate_bench.py [--count 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate


def bare_parse(files: list[Path]) -> int:
    import yaml

    documents = 0
    for path in files:
        documents += sum(1 for _ in yaml.load_all(path.read_bytes(), Loader=yaml.CSafeLoader))
    return documents


def afctl_validate(repo: Path) -> int:
    from afctl.manifests.validate import validate_paths

    result, _ = validate_paths([str(repo)])
    if not result.valid:
        raise SystemExit(f"generated repository is invalid: {result.errors[:3]}")
    return len(result.resources)


def timed(function, *args) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def command(repo: Path, cache_dir: Path, *extra: str) -> float:
    afctl = Path(sys.executable).parent / "afctl"
    env = {**os.environ, "AFCTL_CACHE_DIR": str(cache_dir)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # measure what users get: compiled modules cached
    started = time.perf_counter()
    subprocess.run(
        [str(afctl), "validate", "-f", str(repo), *extra],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="afctl-bench-"))
    try:
        measure(work, args.count, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure(work: Path, count: int, repeat: int) -> None:
    repo = generate(work / "repo", count)
    files = sorted(repo.rglob("*.yaml"))
    print(f"repository: {len(files):,} manifests in {repo}")
    bare_parse(files)  # warm the page cache and imports for both sides
    afctl_validate(repo)

    bare, cold = [], []
    for _ in range(repeat):  # interleaved, so drift hits both sides alike
        bare.append(timed(bare_parse, files))
        cold.append(timed(afctl_validate, repo))
    bare_s, cold_s = statistics.median(bare), statistics.median(cold)
    print(f"bare libyaml parse (PyYAML CSafeLoader) : {bare_s:7.3f} s  (median of {repeat})")
    ratio = cold_s / bare_s
    print(f"afctl validate, cold, in-process        : {cold_s:7.3f} s  -> {ratio:.2f}x bare"
          "  (target <= 2.00x)")  # fmt: skip

    cache_dir = work / "cache"
    cli_cold = [command(repo, cache_dir, "--no-cache") for _ in range(max(2, repeat // 2))]
    command(repo, cache_dir)  # fill the cache
    cli_warm = [command(repo, cache_dir) for _ in range(repeat)]
    print(f"afctl validate command, cold            : {statistics.median(cli_cold):7.3f} s")
    warm = statistics.median(cli_warm)
    print(f"afctl validate command, nothing changed : {warm:7.3f} s  (target <= 0.50 s)")


if __name__ == "__main__":
    main()

"""Benchmark: knowledge pack index build and search latency.

Builds a pack of 10,000 chunks (2,000 markdown files of 5 sections) into a fresh
.afctl/knowledge.db, then times afctl's search (free-text question in, ranked hits with
sources out) beside a bare FTS5 query on the same tables (a hand-written MATCH string, the same
join and BM25 order, rows fetched), interleaved query by query. Prints p50/p95 of each.
Target: afctl's query <= 1.5x the bare FTS5 query.

Usage: python bench/knowledge_bench.py [--files 2000] [--queries 500]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

BARE = (
    "SELECT c.path, c.start_line, c.end_line, c.heading, c.text, bm25(chunks_fts) "
    "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
    "WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT 5"
)


def corpus(root: Path, files: int, rng: random.Random) -> list[str]:
    vocabulary = [f"w{i}" for i in range(5000)]
    weights = [1 / (i + 1) for i in range(len(vocabulary))]  # Zipf-like, as in real text
    docs = root / "docs"
    docs.mkdir(parents=True)
    for number in range(files):
        sections = []
        for section in range(5):
            words = rng.choices(vocabulary, weights, k=35)
            sections.append(f"## Section {section}\n\n" + " ".join(words) + "\n")
        (docs / f"doc{number:05d}.md").write_text("\n".join(sections))
    return vocabulary


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    from afctl.knowledge.index import KnowledgeIndex

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(7)
    root = Path(tempfile.mkdtemp(prefix="afctl-knowledge-bench-"))
    try:
        vocabulary = corpus(root, args.files, rng)
        spec = {"sources": [{"path": "docs/*.md"}], "chunking": {"size": 400, "overlap": 0}}
        with KnowledgeIndex.open(root / ".afctl") as index:
            report = index.build("docs", spec, root)
            again = index.build("docs", spec, root)
            questions = [
                " ".join(rng.choices(vocabulary[:2000], k=rng.randint(3, 6)))
                for _ in range(args.queries)
            ]
            bare_conn = index.conn
            for question in questions[:20]:  # warm the page cache for both
                index.search("docs", question, 5)
            ours, bare = [], []
            for number, question in enumerate(questions):
                match = " OR ".join(f'"{w}"' for w in question.split())
                runs = [
                    (ours, lambda q=question: index.search("docs", q, 5)),
                    (bare, lambda m=match: bare_conn.execute(BARE, [m]).fetchall()),
                ]
                for times, call in runs if number % 2 else reversed(runs):
                    started = time.perf_counter()
                    call()
                    times.append(time.perf_counter() - started)
        print(f"{report.chunks} chunks from {report.files} files")
        print(f"build (all new)      : {report.seconds:6.2f} s "
              f"({report.chunks / report.seconds:,.0f} chunks/s)")  # fmt: skip
        print(f"build (nothing new)  : {again.seconds:6.2f} s")
        p50, p95 = statistics.median(ours), percentile(ours, 0.95)
        b50, b95 = statistics.median(bare), percentile(bare, 0.95)
        print(f"bare FTS5 query      : p50 {b50 * 1000:6.3f} ms  p95 {b95 * 1000:6.3f} ms")
        print(f"afctl search         : p50 {p50 * 1000:6.3f} ms  p95 {p95 * 1000:6.3f} ms"
              f"  -> {p50 / b50:.2f}x p50, {p95 / b95:.2f}x p95 (target <= 1.5x)")  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()

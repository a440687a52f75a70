"""The knowledge index, `.afctl/knowledge.db`: chunks of every pack with an SQLite FTS5 index,
ranked by BM25 (embedded, no model needed), and for `embeddings` and `hybrid` packs a vector
per chunk from the pack's embedding model, searched with DuckDB's `array_cosine_similarity`;
`hybrid` fuses both rankings by reciprocal rank.

Builds are incremental: a file whose bytes (SHA-256) are unchanged keeps its chunks; changed
files are re-chunked, removed ones dropped; a change of the pack's chunking settings rebuilds
the pack. A build is one transaction, so a search never sees half of it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.errors import UsageError
from afctl.knowledge.chunk import DEFAULT_OVERLAP, DEFAULT_SIZE, chunk_text
from afctl.knowledge.ingest import find_sources

INDEX_FILE = "knowledge.db"
DEFAULT_TOP_K = 5
EMBED_BATCH = 64
RRF_K = 60
"""Reciprocal rank fusion: a hit at rank r counts 1 / (RRF_K + r)."""
Embed = Callable[[list[str]], list[list[float]]]
"""Texts -> their vectors (the pack's embedding model)."""
_WORD = re.compile(r"\w+", re.UNICODE)
_SEARCH = (
    "SELECT c.path, c.start_line, c.end_line, c.heading, c.text, bm25(chunks_fts, 1.0, 0.5) "
    "FROM chunks_fts JOIN chunks c ON c.id = chunks_fts.rowid "
    "WHERE chunks_fts MATCH ? AND c.pack = ? ORDER BY bm25(chunks_fts, 1.0, 0.5) LIMIT ?"
)


@dataclass(frozen=True)
class Hit:
    path: str
    start_line: int
    end_line: int
    heading: str | None
    text: str
    score: float
    """Higher is better (BM25, sign flipped)."""

    @property
    def source(self) -> str:
        return f"{self.path}:{self.start_line}-{self.end_line}"

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "path": self.path, "start_line": self.start_line,
                "end_line": self.end_line, "heading": self.heading, "score": self.score,
                "text": self.text}  # fmt: skip


@dataclass(frozen=True)
class BuildReport:
    pack: str
    files: int
    indexed: int
    """Files (re)chunked in this build."""
    unchanged: int
    removed: int
    chunks: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def fts_query(question: str) -> str | None:
    """A free-text question as an FTS5 query: its words, quoted (no FTS syntax gets through),
    any of them matching. None when it has no words."""
    words = _WORD.findall(question.lower())
    if not words:
        return None
    unique = list(dict.fromkeys(words))[:64]
    return " OR ".join(f'"{word}"' for word in unique)


class KnowledgeIndex:
    def __init__(self, path: Path) -> None:
        from afctl.sqlite_files import connect, named_errors

        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = connect(path, timeout=10, isolation_level=None)
        try:
            with named_errors(path):
                self.conn.execute("PRAGMA journal_mode = WAL")
                self.conn.execute("PRAGMA synchronous = NORMAL")
                self._migrate()
        except BaseException:
            self.conn.close()
            raise

    def _migrate(self) -> None:
        """Bring the index up to this afctl's numbered migrations, in one transaction."""
        import sqlite_utils

        from afctl.knowledge.migrations import knowledge_migrations

        db = sqlite_utils.Database(self.conn)
        if not knowledge_migrations.pending(db):
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            knowledge_migrations.apply(db)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    @classmethod
    def open(cls, workspace: Path) -> KnowledgeIndex:
        return cls(workspace / INDEX_FILE)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> KnowledgeIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def build(
        self, name: str, spec: dict[str, Any], root: Path, embed: Embed | None = None
    ) -> BuildReport:
        """Bring pack `name` up to date with its sources (and, for embeddings and hybrid
        packs, give every chunk a vector; chunks still without one after a failure get theirs
        on the next build)."""
        started = time.perf_counter()
        kind = index_type(spec)
        if kind != "fts" and embed is None:
            raise UsageError(f"knowledge pack {name}: a {kind} index needs its embedding model")
        chunking = spec.get("chunking") or {}
        strategy = str(chunking.get("strategy", "markdown"))
        size = int(chunking.get("size", DEFAULT_SIZE))
        overlap = int(chunking.get("overlap", DEFAULT_OVERLAP))
        settings = json.dumps(
            [strategy, size, overlap, spec.get("sources"), spec.get("index")], sort_keys=True
        )
        sources = list(find_sources(list(spec.get("sources") or []), root))
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute("SELECT settings FROM packs WHERE name = ?", [name]).fetchone()
            if row is None or row[0] != settings:
                self._drop(name)
            known = dict(conn.execute("SELECT path, digest FROM files WHERE pack = ?", [name]))
            current = {source.path for source in sources}
            removed = [path for path in known if path not in current]
            for path in removed:
                self._drop_file(name, path)
            indexed = 0
            for source in sources:
                if known.get(source.path) == source.digest:
                    continue
                if source.path in known:
                    self._drop_file(name, source.path)
                chunks = chunk_text(source.text(), strategy, size, overlap)
                rows = [(name, source.path, c.start_line, c.end_line, c.heading, c.text)
                        for c in chunks]  # fmt: skip
                first = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM chunks").fetchone()[0]
                conn.executemany(
                    "INSERT INTO chunks (pack, path, start_line, end_line, heading, text) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                conn.execute(
                    "INSERT INTO chunks_fts (rowid, text, heading) "
                    "SELECT id, text, heading FROM chunks WHERE id >= ? AND pack = ?",
                    [first, name],
                )
                conn.execute(
                    "INSERT OR REPLACE INTO files (pack, path, digest, chunks) VALUES (?, ?, ?, ?)",
                    [name, source.path, source.digest, len(chunks)],
                )
                indexed += 1
            conn.execute(
                "INSERT OR REPLACE INTO packs (name, settings, built_at) "
                "VALUES (?, ?, datetime('now'))",
                [name, settings],
            )
            total = conn.execute("SELECT COUNT(*) FROM chunks WHERE pack = ?", [name]).fetchone()
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if kind != "fts" and embed is not None:
            self._embed_missing(name, embed)
        return BuildReport(
            name, len(sources), indexed, len(sources) - indexed, len(removed), int(total[0]),
            time.perf_counter() - started,
        )  # fmt: skip

    def _embed_missing(self, pack: str, embed: Embed) -> None:
        """Vectors for the pack's chunks that have none, a batch per transaction (no write
        lock is held while the model works)."""
        while True:
            rows = self.conn.execute(
                "SELECT c.id, c.text FROM chunks c LEFT JOIN vectors v ON v.chunk_id = c.id "
                "WHERE c.pack = ? AND v.chunk_id IS NULL LIMIT ?",
                [pack, EMBED_BATCH],
            ).fetchall()
            if not rows:
                return
            vectors = embed([text for _, text in rows])
            if len(vectors) != len(rows):
                raise UsageError("the embedding model returned a wrong number of vectors")
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany(
                "INSERT OR REPLACE INTO vectors (chunk_id, pack, vector) VALUES (?, ?, ?)",
                [(chunk_id, pack, json.dumps(vector)) for (chunk_id, _), vector in
                 zip(rows, vectors, strict=True)],
            )  # fmt: skip
            self.conn.execute("COMMIT")

    def _drop_file(self, pack: str, path: str) -> None:
        self.conn.execute(
            "INSERT INTO chunks_fts (chunks_fts, rowid, text, heading) "
            "SELECT 'delete', id, text, heading FROM chunks WHERE pack = ? AND path = ?",
            [pack, path],
        )
        self.conn.execute(
            "DELETE FROM vectors WHERE chunk_id IN "
            "(SELECT id FROM chunks WHERE pack = ? AND path = ?)",
            [pack, path],
        )
        self.conn.execute("DELETE FROM chunks WHERE pack = ? AND path = ?", [pack, path])
        self.conn.execute("DELETE FROM files WHERE pack = ? AND path = ?", [pack, path])

    def _drop(self, pack: str) -> None:
        for (path,) in self.conn.execute(
            "SELECT path FROM files WHERE pack = ?", [pack]
        ).fetchall():
            self._drop_file(pack, path)
        self.conn.execute("DELETE FROM packs WHERE name = ?", [pack])

    def is_built(self, name: str) -> bool:
        return (
            self.conn.execute("SELECT 1 FROM packs WHERE name = ?", [name]).fetchone() is not None
        )

    def search(
        self,
        name: str,
        question: str,
        k: int = DEFAULT_TOP_K,
        min_score: float | None = None,
        *,
        mode: str = "fts",
        embed: Embed | None = None,
    ) -> list[Hit]:
        """The k chunks of pack `name` that best match `question`: by BM25 (`fts`), by cosine
        similarity of embeddings (`embeddings`), or both fused by reciprocal rank (`hybrid`).

        Raises:
            UsageError: the pack has not been built, or needs an embedding model.
        """
        if not self.is_built(name):
            raise UsageError(
                f"knowledge pack {name} has no index yet", hint=f"afctl knowledge build {name}"
            )
        if mode == "fts":
            hits = self._fts(name, question, k)
        else:
            if embed is None:
                raise UsageError(f"knowledge pack {name}: {mode} search needs its embedding model")
            vector = embed([question])[0]
            if mode == "embeddings":
                hits = self._nearest(name, vector, k)
            else:
                rankings = [self._fts(name, question, k * 4), self._nearest(name, vector, k * 4)]
                hits = _fuse(rankings, k)
        if min_score is not None:
            hits = [hit for hit in hits if hit.score >= min_score]
        return hits

    def _fts(self, name: str, question: str, k: int) -> list[Hit]:
        query = fts_query(question)
        if query is None:
            return []
        rows = self.conn.execute(_SEARCH, [query, name, k]).fetchall()
        return [Hit(p, s, e, h, t, -score) for p, s, e, h, t, score in rows]

    def _nearest(self, name: str, vector: list[float], k: int) -> list[Hit]:
        from afctl.duckdb_sqlite import connect

        dimensions = len(vector)
        duck = connect()
        try:
            duck.execute(f"ATTACH '{self.path.as_posix()}' AS k (TYPE sqlite, READ_ONLY)")
            scored = duck.execute(
                f"SELECT chunk_id, array_cosine_similarity(CAST(vector AS FLOAT[{dimensions}]), "
                f"CAST(? AS FLOAT[{dimensions}])) AS score FROM k.vectors WHERE pack = ? "
                "ORDER BY score DESC LIMIT ?",
                [vector, name, k],
            ).fetchall()
        finally:
            duck.close()
        if not scored:
            return []
        marks = ", ".join("?" * len(scored))
        rows = {
            chunk_id: (path, start, end, heading, text)
            for chunk_id, path, start, end, heading, text in self.conn.execute(
                f"SELECT id, path, start_line, end_line, heading, text FROM chunks "
                f"WHERE id IN ({marks})",
                [chunk_id for chunk_id, _ in scored],
            )
        }
        hits = []
        for chunk_id, score in scored:
            if chunk_id in rows:
                path, start, end, heading, text = rows[chunk_id]
                hits.append(Hit(path, start, end, heading, text, float(score)))
        return hits


def index_type(spec: dict[str, Any]) -> str:
    return str((spec.get("index") or {}).get("type", "fts"))


def _fuse(rankings: list[list[Hit]], k: int) -> list[Hit]:
    """Reciprocal rank fusion of rankings of the same chunks."""
    scores: dict[str, float] = {}
    first: dict[str, Hit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.source] = scores.get(hit.source, 0.0) + 1.0 / (RRF_K + rank)
            first.setdefault(hit.source, hit)
    ordered = sorted(scores, key=lambda source: -scores[source])[:k]
    return [
        Hit(first[s].path, first[s].start_line, first[s].end_line, first[s].heading,
            first[s].text, scores[s])
        for s in ordered
    ]  # fmt: skip

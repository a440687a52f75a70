"""The knowledge index, `.afctl/knowledge.db`: chunks of every pack with an SQLite FTS5 index,
ranked by BM25. Embedded, no model needed.

Builds are incremental: a file whose bytes (SHA-256) are unchanged keeps its chunks; changed
files are re-chunked, removed ones dropped; a change of the pack's chunking settings rebuilds
the pack. A build is one transaction, so a search never sees half of it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from afctl.errors import UsageError
from afctl.knowledge.chunk import DEFAULT_OVERLAP, DEFAULT_SIZE, chunk_text
from afctl.knowledge.ingest import find_sources

INDEX_FILE = "knowledge.db"
DEFAULT_TOP_K = 5
_WORD = re.compile(r"\w+", re.UNICODE)
_SCHEMA = """
CREATE TABLE IF NOT EXISTS packs (name TEXT PRIMARY KEY, settings TEXT, built_at TEXT);
CREATE TABLE IF NOT EXISTS files (
    pack TEXT, path TEXT, digest TEXT, chunks INTEGER, PRIMARY KEY (pack, path)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY, pack TEXT, path TEXT, start_line INTEGER, end_line INTEGER,
    heading TEXT, text TEXT
);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks (pack, path);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, heading, content='chunks', content_rowid='id', tokenize='porter unicode61'
);
"""
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
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.conn = sqlite3.connect(path, timeout=10, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.executescript(_SCHEMA)

    @classmethod
    def open(cls, workspace: Path) -> KnowledgeIndex:
        return cls(workspace / INDEX_FILE)

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> KnowledgeIndex:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def build(self, name: str, spec: dict[str, Any], root: Path) -> BuildReport:
        """Bring pack `name` up to date with its sources."""
        started = time.perf_counter()
        kind = (spec.get("index") or {}).get("type", "fts")
        if kind != "fts":
            raise UsageError(
                f"knowledge pack {name}: {kind} indexes are not built by this version of afctl",
                hint="use index: {type: fts} (SQLite FTS5 with BM25)",
            )
        chunking = spec.get("chunking") or {}
        strategy = str(chunking.get("strategy", "markdown"))
        size = int(chunking.get("size", DEFAULT_SIZE))
        overlap = int(chunking.get("overlap", DEFAULT_OVERLAP))
        settings = json.dumps([strategy, size, overlap, spec.get("sources")], sort_keys=True)
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
        return BuildReport(
            name, len(sources), indexed, len(sources) - indexed, len(removed), int(total[0]),
            time.perf_counter() - started,
        )  # fmt: skip

    def _drop_file(self, pack: str, path: str) -> None:
        self.conn.execute(
            "INSERT INTO chunks_fts (chunks_fts, rowid, text, heading) "
            "SELECT 'delete', id, text, heading FROM chunks WHERE pack = ? AND path = ?",
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
        self, name: str, question: str, k: int = DEFAULT_TOP_K, min_score: float | None = None
    ) -> list[Hit]:
        """The k chunks of pack `name` that best match `question` (BM25).

        Raises:
            UsageError: the pack has not been built.
        """
        query = fts_query(question)
        if query is None:
            return []
        rows = self.conn.execute(_SEARCH, [query, name, k]).fetchall()
        if not rows and not self.is_built(name):
            raise UsageError(
                f"knowledge pack {name} has no index yet", hint=f"afctl knowledge build {name}"
            )
        hits = [Hit(p, s, e, h, t, -score) for p, s, e, h, t, score in rows]
        if min_score is not None:
            hits = [hit for hit in hits if hit.score >= min_score]
        return hits

"""`search_<pack>`: the tool an agent gets for each knowledge pack it lists."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

from afctl.providers.types import ToolSpec

if TYPE_CHECKING:
    from afctl.tool_context import ToolContext


class Passages(str):
    """A search's result as the text the model reads, carrying the hits (with their sources)
    so the run can record them as a `retrieval` event."""

    pack: str
    query: str
    hits: list[dict[str, Any]]

    @classmethod
    def of(cls, text: str, pack: str, query: str, hits: list[Any]) -> Passages:
        passages = cls(text)
        passages.pack, passages.query = pack, query
        passages.hits = [
            {"source": h.source, "heading": h.heading, "score": round(h.score, 4)} for h in hits
        ]
        return passages


class KnowledgeTool:
    """Searches one pack; the index is brought up to date on the first search of a run."""

    def __init__(self, pack: str, document: dict[str, Any], environment: ToolContext) -> None:
        self.pack = pack
        self.pack_spec: dict[str, Any] = document.get("spec") or {}
        self.environment = environment
        self.root = environment.root
        self.index_dir = environment.workspace_dir
        about = (document.get("metadata") or {}).get("description")
        retrieval = self.pack_spec.get("retrieval") or {}
        self.top_k = int(retrieval.get("top_k", 5))
        self.min_score = retrieval.get("min_score")
        self.spec = ToolSpec(
            f"search_{pack}",
            f"Search the {pack} knowledge pack" + (f" ({about})" if about else "")
            + ". Returns the best passages, each after its [source file:lines]; cite them.",
            {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for."},
                    "k": {"type": "integer", "minimum": 1, "maximum": 20,
                          "description": f"How many passages (default {self.top_k})."},
                },
                "required": ["query"],
            },
        )  # fmt: skip
        self.timeout_s: float | None = None
        self._fresh = False

    def _search(self, query: str, k: int) -> Passages:
        """The passages as text a model reads well: `[source] heading`, then the passage."""
        import contextlib

        from afctl.knowledge.index import KnowledgeIndex, index_type

        kind = index_type(self.pack_spec)
        embedder: Any = contextlib.nullcontext(None)
        if kind != "fts":
            from afctl.knowledge.embed import Embedder

            model = str((self.pack_spec.get("index") or {}).get("embedding_model"))
            embedder = Embedder(model, self.environment)
        # concurrent runs (an eval's cases) must not open, create or build one index at once:
        # the first builds, the others wait and find it up to date
        guard = (
            contextlib.nullcontext() if self._fresh else _build_lock(str(self.index_dir), self.pack)
        )
        with guard, KnowledgeIndex.open(self.index_dir) as index, embedder as embed:
            if not self._fresh:
                index.build(self.pack, self.pack_spec, self.root, embed)
                self._fresh = True
            hits = index.search(self.pack, query, k, self.min_score, mode=kind, embed=embed)
        text = "\n\n".join(
            f"[{hit.source}]" + (f" {hit.heading}" if hit.heading else "") + f"\n{hit.text}"
            for hit in hits
        )
        return Passages.of(text or "No passages match.", self.pack, query, hits)

    async def call(self, arguments: dict[str, Any]) -> Any:
        k = int(arguments.get("k") or self.top_k)
        return await asyncio.to_thread(self._search, str(arguments["query"]), k)


_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _build_lock(index_dir: str, pack: str) -> threading.Lock:
    """One lock per index and pack in this process."""
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((index_dir, pack), threading.Lock())

"""`search_<pack>`: the tool an agent gets for each knowledge pack it lists."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from afctl.providers.types import ToolSpec


class KnowledgeTool:
    """Searches one pack; the index is brought up to date on the first search of a run."""

    def __init__(self, pack: str, document: dict[str, Any], root: Path, index_dir: Path) -> None:
        self.pack = pack
        self.pack_spec: dict[str, Any] = document.get("spec") or {}
        self.root = root
        self.index_dir = index_dir
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

    def _search(self, query: str, k: int) -> str:
        """The passages as text a model reads well: `[source] heading`, then the passage."""
        from afctl.knowledge.index import KnowledgeIndex

        with KnowledgeIndex.open(self.index_dir) as index:
            if not self._fresh:
                index.build(self.pack, self.pack_spec, self.root)
                self._fresh = True
            hits = index.search(self.pack, query, k, self.min_score)
        if not hits:
            return "No passages match."
        return "\n\n".join(
            f"[{hit.source}]" + (f" {hit.heading}" if hit.heading else "") + f"\n{hit.text}"
            for hit in hits
        )

    async def call(self, arguments: dict[str, Any]) -> Any:
        k = int(arguments.get("k") or self.top_k)
        return await asyncio.to_thread(self._search, str(arguments["query"]), k)

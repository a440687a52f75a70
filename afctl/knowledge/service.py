"""Knowledge packs of a context: building their indexes, answering questions from them, and
bringing every applied pack up to date after an apply."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from afctl.errors import AfctlError, UsageError
from afctl.manifests.service import Paths, as_list
from afctl.state.service import ApplyOutcome, StateService
from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.knowledge.index import BuildReport, Hit, KnowledgeIndex
    from afctl.manifests.catalog import Catalog
    from afctl.tool_context import ToolContext


@dataclass(frozen=True)
class KnowledgeBuild:
    """A knowledge pack's index build: its report, or why it could not be built."""

    pack: str
    report: BuildReport | None
    error: str | None = None


class KnowledgeService:
    def __init__(
        self,
        workspace: Workspace,
        state: StateService,
        environment: Callable[[Catalog], ToolContext],
    ) -> None:
        self.workspace = workspace
        self.state = state
        self._environment = environment
        """Builds what an embedding model's provider needs (secrets, grants) for a catalog."""

    def index(self) -> KnowledgeIndex:
        """The workspace's knowledge index (`.afctl/knowledge.db`); the caller closes it."""
        from afctl.knowledge.index import KnowledgeIndex

        return KnowledgeIndex.open(self.workspace.dir)

    def _embedder(self, spec: dict[str, Any], catalog: Catalog | None) -> Any:
        """The pack's embedding model as a callable (a context manager); a no-op one for
        full-text packs."""
        from afctl.knowledge.index import index_type

        if index_type(spec) == "fts":
            return contextlib.nullcontext(None)
        from afctl.knowledge.embed import Embedder

        model = str((spec.get("index") or {}).get("embedding_model"))
        catalog = catalog if catalog is not None else self.state.catalog()
        return Embedder(model, self._environment(catalog))

    def refresh(self, outcome: ApplyOutcome) -> ApplyOutcome:
        """After an apply, bring every applied knowledge pack up to date with its sources
        (incremental: a pack whose files did not change costs a hash of each)."""
        from afctl.knowledge.index import index_type

        store = self.state.store()
        packs = store.documents_of_kind(self.workspace.env, "KnowledgePack") if store else {}
        if not packs:
            return outcome
        builds = []
        needs_models = any(index_type(d.get("spec") or {}) != "fts" for d in packs.values())
        catalog = self.state.catalog() if needs_models else None
        with self.index() as index:
            for name, document in packs.items():
                spec = document.get("spec") or {}
                try:
                    with self._embedder(spec, catalog) as embed:
                        report = index.build(name, spec, self.workspace.root, embed)
                    builds.append(KnowledgeBuild(name, report))
                except (AfctlError, OSError) as exc:
                    builds.append(KnowledgeBuild(name, None, str(exc)))
        return replace(outcome, knowledge=tuple(builds))

    def _spec(self, name: str, paths: Paths | None) -> tuple[dict[str, Any], Catalog]:
        catalog = self.state.catalog(as_list(paths) if paths else None)
        document = catalog.find("KnowledgePack", name)
        if document is None:
            where = "in the given files" if paths else f"in environment {self.workspace.env}"
            raise UsageError(
                f"knowledgepack/{name} is not defined {where}",
                hint="apply it first (afctl apply -f .), or pass its manifest with -f",
            )
        spec: dict[str, Any] = document.get("spec") or {}
        return spec, catalog

    def build(self, name: str, *, paths: Paths | None = None) -> BuildReport:
        """Index knowledge pack `name` (from `paths`, or the applied state), incrementally.

        Raises:
            UsageError: there is no such pack, or a source glob leaves the repository.
        """
        spec, catalog = self._spec(name, paths)
        with self.index() as index, self._embedder(spec, catalog) as embed:
            return index.build(name, spec, self.workspace.root, embed)

    def query(
        self, name: str, question: str, *, k: int | None = None, paths: Paths | None = None
    ) -> list[Hit]:
        """The chunks of pack `name` that best answer `question`, best first; the index is
        brought up to date first.

        Raises:
            UsageError: there is no such pack.
        """
        from afctl.knowledge.index import index_type

        spec, catalog = self._spec(name, paths)
        retrieval = spec.get("retrieval") or {}
        with self.index() as index, self._embedder(spec, catalog) as embed:
            index.build(name, spec, self.workspace.root, embed)
            return index.search(name, question, k or int(retrieval.get("top_k", 5)),
                                retrieval.get("min_score"), mode=index_type(spec),
                                embed=embed)  # fmt: skip

"""The resources a run, a plan or a service can see: documents by kind and name, from the
applied state, from manifest files, or from a recorded revision."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from afctl.errors import RunError

T = TypeVar("T")


class Catalog:
    """Resource documents by (kind, name). Read-only once made: what is derived from it (an
    agent's revision bundle and hash) is computed once per catalog."""

    def __init__(self, documents: Mapping[tuple[str, str], dict[str, Any]]) -> None:
        self.documents = dict(documents)
        self._derived: dict[Hashable, Any] = {}

    def derived(self, key: Hashable, compute: Callable[[], T]) -> T:
        """`compute()`, remembered under `key` for the life of the catalog."""
        if key not in self._derived:
            self._derived[key] = compute()
        value: T = self._derived[key]
        return value

    @classmethod
    def of(cls, items: Iterable[tuple[str, str, dict[str, Any]]]) -> Catalog:
        return cls({(kind, name): document for kind, name, document in items})

    @classmethod
    def of_bundle(cls, bundle: dict[str, dict[str, dict[str, Any]]]) -> Catalog:
        """The resources of a recorded revision (kind -> name -> document)."""
        return cls.of((k, n, d) for k, documents in bundle.items() for n, d in documents.items())

    def get(self, kind: str, name: str) -> dict[str, Any]:
        document: dict[str, Any] | None = self.documents.get((kind, name))
        if document is None:
            raise RunError(
                f"{kind.lower()}/{name} is not available to this run",
                hint="apply it (afctl apply -f .), or run with -f pointing at its manifest too",
            )
        return document

    def find(self, kind: str, name: str) -> dict[str, Any] | None:
        return self.documents.get((kind, name))

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: doc for (k, name), doc in self.documents.items() if k == kind}

"""Loaded manifests: one resource each, identified by (kind, name)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from afctl.manifests.kinds import KINDS


@dataclass(frozen=True)
class Manifest:
    """One resource as written in a file."""

    kind: str
    name: str
    data: dict[str, Any]
    """The whole document: apiVersion, kind, metadata, spec."""
    file: str
    line: int
    """1-based line where the document starts."""
    document: int = 0
    """0-based index of the document within its file."""

    @property
    def ref(self) -> str:
        """`kind/name` as used on the command line (`agent/support`)."""
        return f"{self.kind.lower()}/{self.name}"

    @property
    def metadata(self) -> dict[str, Any]:
        value = self.data.get("metadata", {})
        return value if isinstance(value, dict) else {}

    @property
    def spec(self) -> dict[str, Any]:
        value = self.data.get("spec", {})
        return value if isinstance(value, dict) else {}

    @property
    def labels(self) -> dict[str, str]:
        value = self.metadata.get("labels", {})
        return value if isinstance(value, dict) else {}


_KIND_ORDER = {kind: index for index, kind in enumerate(KINDS)}


@dataclass
class ManifestSet:
    """Manifests loaded together, in a stable order (by kind, then name)."""

    manifests: list[Manifest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.manifests.sort(key=lambda m: (_KIND_ORDER.get(m.kind, 99), m.name))
        self._index = {(m.kind, m.name): m for m in self.manifests}

    def __iter__(self) -> Iterator[Manifest]:
        return iter(self.manifests)

    def __len__(self) -> int:
        return len(self.manifests)

    def get(self, kind: str, name: str) -> Manifest | None:
        return self._index.get((kind, name))

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

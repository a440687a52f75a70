"""Checks across manifests: duplicate (kind, name) pairs, references to resources that are not
defined, and workflows that run themselves through sub-workflows."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from typing import Any, NamedTuple

from afctl.diagnostics import Diagnostic, did_you_mean, error
from afctl.manifests.graph import find_cycles


class Ref(NamedTuple):
    """A reference from a manifest to another resource, with where it is written."""

    kind: str
    name: str
    pointer: str
    line: int
    col: int


class Resource(NamedTuple):
    """A resource found in the files: what it is and where it is defined."""

    kind: str
    name: str
    file: str
    line: int
    """1-based line of `metadata.name`."""
    col: int
    document: int


RefRows = Sequence[Sequence[Any]]
"""One resource's references: `Ref`s, or from the cache, lists in the same field order."""


def check_references(
    resources: Sequence[Resource],
    refs: Sequence[RefRows],
    external: Collection[tuple[str, str]] = (),
) -> list[Diagnostic]:
    """Problems visible only across files; deterministic whatever the order of `resources`.

    Args:
        resources: every resource found.
        refs: the references of each resource, in the same order.
        external: (kind, name) of resources that exist elsewhere (applied), which
            references may name too.
    """
    ordered = sorted(zip(resources, refs, strict=True), key=lambda p: (p[0].file, p[0].line))
    diagnostics: list[Diagnostic] = []
    by_id: dict[tuple[str, str], list[Resource]] = defaultdict(list)
    names: dict[str, set[str]] = defaultdict(set)
    for resource, _ in ordered:
        by_id[(resource.kind, resource.name)].append(resource)
        names[resource.kind].add(resource.name)

    for (kind, name), group in by_id.items():
        first = group[0]
        for other in group[1:]:
            diagnostics.append(
                error(
                    "ref.duplicate",
                    f'{kind} "{name}" is defined more than once '
                    f"(also at {first.file}:{first.line})",
                    file=other.file,
                    line=other.line,
                    col=other.col,
                    document=other.document,
                    pointer="/metadata/name",
                    hint="names are unique per kind; rename or remove one of them",
                )
            )

    for kind, name in external:
        names[kind].add(name)
    for resource, rows in ordered:
        for kind, name, pointer, line, col in rows:
            if name in names[kind]:
                continue
            hint = did_you_mean(name, names[kind]) or (
                f"define {_article(kind)} {kind} named {name}, or validate "
                "together with the file that defines it (-f .)"
            )
            if kind == "Model":
                hint += "; or write provider/model, e.g. openai/gpt-4.1-mini"
            diagnostics.append(
                error(
                    "ref.dangling",
                    f'{resource.kind} "{resource.name}" refers to {kind} "{name}", '
                    "which is not defined",
                    file=resource.file,
                    line=line,
                    col=col,
                    document=resource.document,
                    pointer=pointer,
                    hint=hint,
                )
            )

    diagnostics.extend(_workflow_cycles(ordered))
    return diagnostics


def _workflow_cycles(resources: Iterable[tuple[Resource, RefRows]]) -> list[Diagnostic]:
    graph: dict[str, list[str]] = {}
    first_ref: dict[tuple[str, str], tuple[Resource, Ref]] = {}
    for resource, rows in resources:
        if resource.kind != "Workflow" or resource.name in graph:
            continue
        targets = []
        for ref in map(Ref._make, rows):
            if ref.kind == "Workflow":
                targets.append(ref.name)
                first_ref.setdefault((resource.name, ref.name), (resource, ref))
        graph[resource.name] = targets
    diagnostics = []
    for cycle in find_cycles(graph):
        resource, ref = first_ref[(cycle[0], cycle[1] if len(cycle) > 1 else cycle[0])]
        diagnostics.append(
            error(
                "ref.cycle",
                "workflows run each other in a cycle: " + " → ".join([*cycle, cycle[0]]),
                file=resource.file,
                line=ref.line,
                col=ref.col,
                document=resource.document,
                pointer=ref.pointer,
                hint="a workflow may not run itself, directly or through other workflows",
            )
        )
    return diagnostics


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"

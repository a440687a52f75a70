"""Differences between two versions of a manifest: field by field, or as a unified YAML diff."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from afctl.hashing import canonical_json
from afctl.hashing import content_hash as content_hash
from afctl.manifests.positions import make_pointer

_MISSING: Any = object()


@dataclass(frozen=True)
class FieldChange:
    """One changed value: `op` is add, remove or replace; `path` is a JSON pointer."""

    op: str
    path: str
    before: Any = None
    after: Any = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"op": self.op, "path": self.path}
        if self.op != "add":
            data["before"] = self.before
        if self.op != "remove":
            data["after"] = self.after
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FieldChange:
        return cls(data["op"], data["path"], data.get("before"), data.get("after"))


def field_changes(before: Any, after: Any) -> list[FieldChange]:
    """The leaf-level differences from `before` to `after`, in document order.

    Mappings are compared key by key; lists of the same length item by item; anything else
    (scalars, lists that grew or shrank) is replaced as a whole.
    """
    changes: list[FieldChange] = []
    _compare(before, after, [], changes)
    return changes


def _compare(before: Any, after: Any, path: list[str | int], out: list[FieldChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in before:
            if key not in after:
                out.append(FieldChange("remove", make_pointer([*path, key]), before[key]))
            else:
                _compare(before[key], after[key], [*path, key], out)
        for key in after:
            if key not in before:
                out.append(FieldChange("add", make_pointer([*path, key]), after=after[key]))
        return
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        for index, (old, new) in enumerate(zip(before, after, strict=True)):
            _compare(old, new, [*path, index], out)
        return
    if canonical_json(before) != canonical_json(after):
        out.append(FieldChange("replace", make_pointer(path), before, after))


def unified_yaml_diff(
    before: dict[str, Any] | None, after: dict[str, Any] | None, from_label: str, to_label: str
) -> str:
    """A unified diff of two documents rendered as YAML (an absent side diffs as empty)."""
    from afctl.manifests.dump import dump_yaml

    old = dump_yaml(before).splitlines(keepends=True) if before is not None else []
    new = dump_yaml(after).splitlines(keepends=True) if after is not None else []
    return "".join(difflib.unified_diff(old, new, from_label, to_label))

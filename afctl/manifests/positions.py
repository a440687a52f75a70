"""Where each key and value of a loaded YAML document sits in its file.

A position tree runs parallel to the data, built from plain tuples because the loader makes one
per node of every manifest (keep it cheap):

    scalar     (line, col)
    mapping    (line, col, {key: (key_line, key_col, value_position)})
    sequence   (line, col, [item_position, ...])

Lines and columns are 0-based here; diagnostics turn them into 1-based numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Position = tuple[Any, ...]


def pointer_parts(pointer: str) -> list[str]:
    """Split a JSON pointer (RFC 6901) into unescaped reference tokens."""
    if not pointer:
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]


def make_pointer(parts: Sequence[str | int]) -> str:
    """Join reference tokens into a JSON pointer (RFC 6901)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def locate(root: Position, parts: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
    """The (line, col) of the value at `parts`, or of its key when `key` is true.

    When the path leaves the tree (a missing key, say), the deepest position reached is returned,
    which is where a user would add the missing piece.
    """
    pos = root
    line, col = pos[0], pos[1]
    for index, part in enumerate(parts):
        children = pos[2] if len(pos) > 2 else None
        if isinstance(children, dict):
            entry = children.get(str(part))
            if entry is None:
                return line, col
            if key and index == len(parts) - 1:
                return entry[0], entry[1]
            pos = entry[2]
        elif isinstance(children, list):
            try:
                pos = children[int(part)]
            except (ValueError, IndexError):
                return line, col
        else:
            return line, col
        line, col = pos[0], pos[1]
    return line, col

"""Cutting text into chunks: at markdown headings first (each chunk knows its heading), then by
size, on line boundaries, with an overlap; every chunk records its line span."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_SIZE = 1200
DEFAULT_OVERLAP = 150
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Chunk:
    text: str
    start_line: int
    """1-based, inclusive."""
    end_line: int
    heading: str | None = None


def chunk_text(
    text: str, strategy: str = "markdown", size: int = DEFAULT_SIZE, overlap: int = DEFAULT_OVERLAP
) -> list[Chunk]:
    lines = text.splitlines()
    sections = _sections(lines) if strategy == "markdown" else [(0, len(lines), None)]
    chunks: list[Chunk] = []
    for start, end, heading in sections:
        chunks.extend(_by_size(lines, start, end, heading, size, min(overlap, size // 2)))
    return chunks


def _sections(lines: list[str]) -> list[tuple[int, int, str | None]]:
    """(first line index, end index, heading path) per section, cut at headings outside code
    fences; the heading path is `Guide > Install`."""
    sections: list[tuple[int, int, str | None]] = []
    path: list[tuple[int, str]] = []
    start, fenced, heading = 0, False, None
    for index, line in enumerate(lines):
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        if index > start:
            sections.append((start, index, heading))
        level = len(match[1])
        path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, match[2])]
        heading = " > ".join(title for _, title in path)
        start = index
    sections.append((start, len(lines), heading))
    return sections


def _by_size(
    lines: list[str], start: int, end: int, heading: str | None, size: int, overlap: int
) -> list[Chunk]:
    chunks: list[Chunk] = []
    index = start
    while index < end:
        length, last = 0, index
        while last < end and (length == 0 or length + len(lines[last]) + 1 <= size):
            length += len(lines[last]) + 1
            last += 1
        body = "\n".join(lines[index:last]).strip()
        if body:
            chunks.append(Chunk(body, index + 1, last, heading))
        if last >= end:
            break
        # step back over whole lines worth `overlap` characters, always moving forward
        back, shared = last, 0
        while back - 1 > index and shared + len(lines[back - 1]) + 1 <= overlap:
            back -= 1
            shared += len(lines[back]) + 1
        index = back
    return chunks

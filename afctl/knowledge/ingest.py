"""Reading a pack's sources: files matched by globs relative to the repository root, as text
whose lines match the file's (so a hit can cite `docs/faq.md:12-30`)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from afctl.errors import UsageError
from afctl.safety.paths import PathRefused, inside

READABLE = frozenset({".md", ".markdown", ".txt", ".html", ".htm", ".json", ".csv"})


@dataclass(frozen=True)
class Source:
    path: str
    """Relative to the repository root, with forward slashes."""
    digest: str
    data: bytes

    def text(self) -> str:
        return as_text(self.path, self.data)


def find_sources(sources: list[dict[str, Any]], root: Path) -> Iterator[Source]:
    """Every readable file the pack's globs match, once, in a stable order.

    Raises:
        UsageError: a glob reaches outside the repository.
    """
    seen: set[str] = set()
    resolved_root = root.resolve()
    for source in sources:
        pattern = str(source["path"])
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            raise UsageError(f"knowledge source {pattern!r} must stay inside the repository")
        excluded = [str(e) for e in source.get("exclude") or []]
        for path in sorted(resolved_root.glob(pattern)):
            relative = path.relative_to(resolved_root).as_posix()
            if relative in seen or not path.is_file() or path.suffix.lower() not in READABLE:
                continue
            if any(Path(relative).match(e) or path.match(e) for e in excluded):
                continue
            try:
                inside(resolved_root, relative)
            except PathRefused:  # a symlink that leaves the repository
                continue
            seen.add(relative)
            data = path.read_bytes()
            yield Source(relative, hashlib.sha256(data).hexdigest(), data)


class _Text(HTMLParser):
    """HTML to text, keeping line breaks where the source has them."""

    SKIP = frozenset({"script", "style", "head"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in self.SKIP:
            self.skipping += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP and self.skipping:
            self.skipping -= 1

    def handle_data(self, data: str) -> None:
        if self.skipping:
            self.parts.append("\n" * data.count("\n"))
        else:
            self.parts.append(data)


def as_text(path: str, data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    suffix = Path(path).suffix.lower()
    if suffix in (".html", ".htm"):
        parser = _Text()
        parser.feed(text)
        parser.close()
        return "".join(parser.parts)
    if suffix == ".json":
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            return text
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(text)))
        if not rows:
            return ""
        header, body = rows[0], rows[1:]
        lines = [", ".join(header)]
        lines += ["; ".join(f"{h}: {v}" for h, v in zip(header, row, strict=False)) for row in body]
        return "\n".join(lines)
    return text

"""Turn the bytes of a YAML file into plain data with positions, safely, fast, and completely.

Safety by construction: the loader builds nothing but dicts, lists, str, int, float, bool and
None from libyaml's event stream; there is no constructor that could be tricked into creating
objects, so `!!python/...` and every other non-standard tag is reported, never honoured.

Scalars follow the YAML 1.2 core schema (what ruamel.yaml reads by default): `yes`, `no`, `on`
and `off` stay strings, `0o17` is octal, timestamps stay strings. Mapping keys are always
strings: a scalar key is taken verbatim (`200:` is the key "200").

Every problem becomes a diagnostic, and the loader carries on where it can: after a syntax error
it resumes at the next `---` line so later documents are still checked. Limits on file size,
nesting depth and node count (aliases included) refuse YAML bombs quickly in bounded memory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afctl.diagnostics import Diagnostic, error, warning
from afctl.manifests.limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, MAX_NUMBER_DIGITS
from afctl.manifests.positions import Position

_CORE = "tag:yaml.org,2002:"
_PLAIN_TAGS = {None, "!", _CORE + "str"}
_SCALAR_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null")}
_INT = re.compile(r"[-+]?[0-9]+")
_OCT = re.compile(r"0o[0-7]+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_SPECIAL = {
    "true": True, "True": True, "TRUE": True,
    "false": False, "False": False, "FALSE": False,
    "null": None, "Null": None, "NULL": None, "~": None, "": None,
    ".inf": float("inf"), ".Inf": float("inf"), ".INF": float("inf"),
    "+.inf": float("inf"), "+.Inf": float("inf"), "+.INF": float("inf"),
    "-.inf": float("-inf"), "-.Inf": float("-inf"), "-.INF": float("-inf"),
    ".nan": float("nan"), ".NaN": float("nan"), ".NAN": float("nan"),
}  # fmt: skip
_MAYBE_NOT_STR = frozenset("0123456789+-.tTfFnN~")
_DOC_SEPARATOR = re.compile(rb"^---(?=[ \t\r\n]|$)", re.M)


class _Abort(Exception):
    """Stop reading this file: the rest of the stream cannot be trusted or is too costly."""

    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.summary)
        self.diagnostic = diagnostic


class _NumberError(ValueError):
    pass


@dataclass
class Document:
    """One YAML document of a file: its data and where each part of it is."""

    data: Any
    positions: Position
    index: int
    """0-based index of the document within its file."""

    @property
    def line(self) -> int:
        return int(self.positions[0]) + 1


@dataclass
class LoadedFile:
    """Everything read from one file: its documents and the problems found on the way."""

    path: str
    text: str | None
    documents: list[Document] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)


def resolve_plain(value: str) -> Any:
    """The value of a plain (unquoted, untagged) scalar under the YAML 1.2 core schema."""
    if not value:
        return None
    if value[0] not in _MAYBE_NOT_STR:
        return value
    special = _SPECIAL.get(value, _SPECIAL)
    if special is not _SPECIAL:
        return special
    if _INT.fullmatch(value):
        return _to_int(value, 10)
    if _FLOAT.fullmatch(value):
        return float(value)
    if _OCT.fullmatch(value):
        return _to_int(value[2:], 8)
    if _HEX.fullmatch(value):
        return _to_int(value[2:], 16)
    return value


def _to_int(text: str, base: int) -> int:
    if len(text) > MAX_NUMBER_DIGITS:
        raise _NumberError(f"a number with more than {MAX_NUMBER_DIGITS} digits")
    return int(text, base)


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _scalar_by_tag(tag: str, value: str) -> Any:
    kind = tag[len(_CORE) :]
    if kind == "str":
        return value
    resolved = resolve_plain(value)
    expected = {"int": int, "float": (float, int), "bool": bool, "null": type(None)}[kind]
    if isinstance(resolved, bool) and kind in ("int", "float"):
        raise _NumberError(f"{value!r} is not a valid !!{kind}")
    if not isinstance(resolved, expected):  # type: ignore[arg-type]
        raise _NumberError(f"{value!r} is not a valid !!{kind}")
    return float(resolved) if kind == "float" else resolved


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _line_col(data: bytes, offset: int) -> tuple[int, int]:
    line = data.count(b"\n", 0, offset)
    start = data.rfind(b"\n", 0, offset) + 1
    return line, len(data[start:offset].decode("utf-8", "replace"))


class _EventSource:
    """libyaml's parser through ruamel.yaml.clib, or ruamel's pure-Python one if it is missing.

    `open(data)` returns a function giving the next event (None at the end) and a closer.
    """

    def __init__(self) -> None:
        try:
            from ruamel.yaml.cyaml import CParser  # type: ignore[attr-defined]
        except ImportError:  # pragma: no cover - only where the C extension is absent
            CParser = None
        self._c_parser = CParser

    def open(self, data: bytes) -> tuple[Callable[[], Any], Callable[[], None]]:
        if self._c_parser is not None:
            parser = self._c_parser(data)
            return parser.get_event, parser.dispose
        from ruamel.yaml import YAML  # pragma: no cover

        events = iter(YAML(typ="safe", pure=True).parse(data.decode("utf-8")))  # pragma: no cover
        return (lambda: next(events, None)), (lambda: None)  # pragma: no cover


_events: _EventSource | None = None


def load_mapping(path: str | os.PathLike[str], flag: str, what: str) -> dict[str, Any]:
    """The one YAML (or JSON) mapping in the file a flag named (`--input-file`, `-f` of
    blueprint values), read safely.

    Raises:
        UsageError: the file cannot be read, or does not hold exactly one mapping; the message
            names the flag and says `what` it should hold.
    """
    from afctl.errors import UsageError

    name = os.fspath(path)
    try:
        loaded = load_bytes(Path(path).read_bytes(), name)
    except OSError as exc:
        raise UsageError(f"{flag} {name}: cannot read it: {exc.strerror}") from None
    documents = [d.data for d in loaded.documents]
    if (
        any(d.is_error for d in loaded.diagnostics)
        or len(documents) != 1
        or not isinstance(documents[0], dict)
    ):
        raise UsageError(f"{flag} {name}: give one {what}")
    return dict(documents[0])


def load_bytes(data: bytes, path: str = "<input>") -> LoadedFile:
    """Read every document of a YAML file, collecting each problem as a diagnostic."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(data, exc.start)
        return LoadedFile(
            path,
            None,
            diagnostics=[
                error(
                    "yaml.encoding",
                    f"the file is not valid UTF-8 (byte 0x{data[exc.start]:02x})",
                    file=path,
                    line=line + 1,
                    col=col + 1,
                    hint="save the file as UTF-8",
                )
            ],
        )
    result = LoadedFile(path, text)
    if len(data) > MAX_FILE_BYTES:
        result.diagnostics.append(
            error(
                "yaml.too-large",
                f"the file is {len(data):,} bytes; manifests may be at most {MAX_FILE_BYTES:,}",
                file=path,
                line=1,
                col=1,
                hint="split it into several files, or keep large data out of manifests",
            )
        )
        return result
    _Builder(data, path, result).run()
    if not result.documents and not result.diagnostics:
        result.diagnostics.append(
            warning("manifest.empty-file", "the file contains no documents", file=path)
        )
    return result


class _Builder:
    """Builds documents from events, resuming after syntax errors at the next `---` line."""

    def __init__(self, data: bytes, path: str, result: LoadedFile) -> None:
        self.data = data
        self.path = path
        self.result = result

    def run(self) -> None:
        global _events
        if _events is None:
            _events = _EventSource()
        from ruamel.yaml.error import YAMLError

        offset, line_offset = 0, 0
        while True:
            chunk = self.data[offset:] if offset else self.data
            get_event, close = _events.open(chunk)
            try:
                self._build(get_event, line_offset)
                return
            except _Abort as abort:
                self.result.diagnostics.append(abort.diagnostic)
                return
            except YAMLError as exc:
                line = self._report_syntax(exc, chunk, line_offset)
            except (RecursionError, MemoryError):
                self._add("yaml.too-deep", "the document is too deeply nested to read", 0, 0)
                return
            except Exception as exc:  # libyaml wrappers raise odd types on odd input
                self._add("yaml.syntax", f"cannot read YAML: {exc}", line_offset, 0)
                return
            finally:
                close()
            resume = None
            for match in _DOC_SEPARATOR.finditer(self.data, offset):
                if self.data.count(b"\n", 0, match.start()) > line:
                    resume = match.start()
                    break
            if resume is None:
                return
            offset = resume
            line_offset = self.data.count(b"\n", 0, offset)

    def _add(self, code: str, summary: str, line: int, col: int, hint: str | None = None) -> None:
        self.result.diagnostics.append(
            error(code, summary, file=self.path, line=line + 1, col=col + 1, hint=hint)
        )

    def _report_syntax(self, exc: Any, chunk: bytes, line_offset: int) -> int:
        """Add a diagnostic for a libyaml error; returns its absolute 0-based line."""
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        if mark is not None:
            line, col = int(mark.line) + line_offset, int(mark.column)
        elif getattr(exc, "position", None) is not None:
            line, col = _line_col(chunk, int(exc.position))
            line += line_offset
        else:
            line, col = line_offset, 0
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or str(exc)
        context = getattr(exc, "context", None)
        summary = f"{problem} ({context})" if context else str(problem)
        lines = self.data.splitlines()
        source = lines[line] if 0 <= line < len(lines) else b""
        indented_with_tab = b"\t" in source[: len(source) - len(source.lstrip())]
        if indented_with_tab or "tab" in summary or "'\\t'" in summary:
            self._add(
                "yaml.tab",
                "a tab character is used for indentation",
                line,
                col,
                hint="YAML indentation must use spaces; replace the tabs with spaces",
            )
        elif "control character" in summary or "special characters" in summary:
            self._add(
                "yaml.syntax",
                "the file contains a control character YAML does not allow",
                line,
                col,
                hint="remove the invisible control character",
            )
        else:
            self._add("yaml.syntax", f"invalid YAML: {summary}", line, col)
        return line

    def _build(self, get_event: Callable[[], Any], line_offset: int) -> None:
        # One pass over the event stream with an explicit stack: no recursion, so nesting depth
        # is a counter we check, not a C stack we might overflow. This is the hottest loop of
        # `afctl validate`; it keeps the current frame in locals and avoids helper calls.
        from ruamel.yaml.events import (
            AliasEvent,
            DocumentEndEvent,
            DocumentStartEvent,
            MappingEndEvent,
            MappingStartEvent,
            ScalarEvent,
            SequenceEndEvent,
            SequenceStartEvent,
        )

        add = self._add
        documents = self.result.documents
        doc_index = len(documents)
        anchors: dict[str, tuple[Any, Position, int, int]] = {}
        stack: list[_Frame] = []
        frame: _Frame | None = None  # the innermost open mapping or sequence
        root: Any = None
        root_pos: Position | None = None
        nodes = 0
        while True:
            event = get_event()
            if event is None:
                return
            kind = type(event)
            if kind is ScalarEvent:
                mark = event.start_mark
                line, col = mark.line + line_offset, mark.column
                value = event.value
                tag = event.tag
                if frame is not None and frame.is_map and frame.key is None:
                    # a mapping key
                    if tag is not None and tag not in _PLAIN_TAGS:
                        add(
                            "yaml.tag",
                            f"unsupported tag {_short_tag(tag)} on a mapping key",
                            line,
                            col,
                            hint="mapping keys must be plain strings",
                        )
                    if value in frame.data and value != "<<":
                        first = frame.children[value]
                        add(
                            "yaml.duplicate-key",
                            f'duplicate key "{value}" (first defined on line {first[0] + 1})',
                            line,
                            col,
                            hint="remove one of them; YAML keys must be unique in a mapping",
                        )
                        frame.key = _DUPLICATE
                    else:
                        frame.key = value
                        frame.key_line, frame.key_col = line, col
                        frame.key_plain = event.implicit[0]
                    if event.anchor:
                        anchors[event.anchor] = (value, (line, col), 1, 0)
                    nodes += 1
                    continue
                try:
                    if tag is None:
                        data = resolve_plain(value) if event.implicit[0] else value
                    elif tag in _PLAIN_TAGS:
                        data = value
                    elif tag in _SCALAR_TAGS:
                        data = _scalar_by_tag(tag, value)
                    else:
                        self._unsupported_tag(tag, line, col)
                        data = value
                except _NumberError as exc:
                    add("yaml.number", str(exc), line, col)
                    data = value
                pos: Position = (line, col)
                size = height = 0
                if event.anchor:
                    anchors[event.anchor] = (data, pos, 1, 0)
                nodes += 1
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                mark = event.start_mark
                line, col = mark.line + line_offset, mark.column
                if len(stack) >= MAX_DEPTH:
                    self._abort(
                        "yaml.too-deep",
                        f"the document nests deeper than {MAX_DEPTH} levels",
                        line,
                        col,
                    )
                is_map = kind is MappingStartEvent
                tag = event.tag
                if tag is not None and tag != "!" and tag != _CORE + ("map" if is_map else "seq"):
                    self._unsupported_tag(tag, line, col)
                if frame is not None and frame.is_map and frame.key is None:
                    add(
                        "yaml.complex-key",
                        "a mapping key must be a plain scalar, not a "
                        + ("mapping" if is_map else "sequence"),
                        line,
                        col,
                    )
                    frame.key = _COMPLEX_KEY
                frame = _Frame(is_map, event.anchor, line, col)
                stack.append(frame)
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                done = stack.pop()
                frame = stack[-1] if stack else None
                data = done.data
                if done.merges:
                    _apply_merges(data, done.children, done.merges)
                pos = (done.line, done.col, done.children)
                size, height = done.size, done.height + 1
                if done.anchor:
                    anchors[done.anchor] = (data, pos, size + 1, height)
                nodes += 1
            elif kind is AliasEvent:
                mark = event.start_mark
                line, col = mark.line + line_offset, mark.column
                anchored = anchors.get(event.anchor)
                if anchored is None:
                    add(
                        "yaml.alias",
                        f'unknown alias "*{event.anchor}"',
                        line,
                        col,
                        hint="define the anchor (&name) before using it",
                    )
                    data, pos, size, height = None, (line, col), 0, 0
                else:
                    data, pos, count, height = anchored
                    size = count - 1
                    if len(stack) + height > MAX_DEPTH:
                        self._abort(
                            "yaml.too-deep",
                            f"the document nests deeper than {MAX_DEPTH} levels",
                            line,
                            col,
                        )
                    if nodes + count > MAX_NODES:
                        self._abort(
                            "yaml.alias-bomb",
                            f"the document expands to more than {MAX_NODES:,} nodes "
                            "through aliases",
                            line,
                            col,
                            hint="this looks like a YAML bomb; remove the nested aliases",
                        )
                    if count > 1:
                        data = _copy(data)
                nodes += size + 1
                if frame is not None and frame.is_map and frame.key is None:
                    # an alias used as a mapping key
                    if isinstance(data, (dict, list)) or data is None:
                        add("yaml.complex-key", "a mapping key must be a plain scalar", line, col)
                        frame.key = _DUPLICATE
                    else:
                        frame.key = str(data)
                        frame.key_line, frame.key_col, frame.key_plain = line, col, False
                    continue
            elif kind is DocumentStartEvent:
                root, root_pos, nodes = None, None, 0
                anchors.clear()
                continue
            elif kind is DocumentEndEvent:
                if root_pos is not None and root is not None:
                    documents.append(Document(root, root_pos, doc_index))
                doc_index += 1
                continue
            else:
                continue

            if nodes > MAX_NODES:
                self._abort(
                    "yaml.too-large",
                    f"the document has more than {MAX_NODES:,} nodes",
                    pos[0],
                    pos[1],
                )
            if frame is None:
                root, root_pos = data, pos
                continue
            frame.size += size + 1
            if height > frame.height:
                frame.height = height
            if frame.is_map:
                key = frame.key
                frame.key = None
                if key is _COMPLEX_KEY:
                    frame.key = _DUPLICATE  # the complex key is done; drop the value that follows
                elif key is _DUPLICATE:
                    pass
                elif key == "<<" and frame.key_plain:
                    if isinstance(data, dict) or (
                        isinstance(data, list) and all(isinstance(d, dict) for d in data)
                    ):
                        frame.merges.append((data, pos))
                    else:
                        add(
                            "yaml.merge",
                            "a merge key (<<) needs a mapping or a list of mappings",
                            pos[0],
                            pos[1],
                        )
                else:
                    frame.data[key] = data
                    frame.children[key] = (frame.key_line, frame.key_col, pos)
            else:
                frame.data.append(data)
                frame.children.append(pos)

    def _unsupported_tag(self, tag: str, line: int, col: int) -> None:
        self._add(
            "yaml.tag",
            f"unsupported tag {_short_tag(tag)}",
            line,
            col,
            hint="afctl reads plain YAML data only; remove the tag",
        )

    def _abort(self, code: str, summary: str, line: int, col: int, hint: str | None = None) -> None:
        raise _Abort(error(code, summary, file=self.path, line=line + 1, col=col + 1, hint=hint))


class _Frame:
    """An open mapping or sequence while its events are being read."""

    __slots__ = (
        "anchor",
        "children",
        "col",
        "data",
        "height",
        "is_map",
        "key",
        "key_col",
        "key_line",
        "key_plain",
        "line",
        "merges",
        "size",
    )

    def __init__(self, is_map: bool, anchor: str | None, line: int, col: int) -> None:
        self.is_map = is_map
        self.data: Any = {} if is_map else []
        self.children: Any = {} if is_map else []
        self.anchor = anchor
        self.line = line
        self.col = col
        self.key: Any = None
        self.key_line = 0
        self.key_col = 0
        self.key_plain = True
        self.size = 0
        """Nodes below this one (aliases counted at their expanded size)."""
        self.height = 0
        self.merges: list[tuple[Any, Position]] = []


_DUPLICATE = object()
_COMPLEX_KEY = object()


def _apply_merges(
    data: dict[str, Any], children: dict[str, Any], merges: list[tuple[Any, Position]]
) -> None:
    """YAML merge keys (`<<: *base`): keys of the merged mappings that the mapping lacks."""
    for value, pos in merges:
        sources = [(value, pos)] if isinstance(value, dict) else zip(value, pos[2], strict=True)
        for source, source_pos in sources:
            for key, item in source.items():
                if key not in data:
                    data[key] = item
                    children[key] = source_pos[2][key]

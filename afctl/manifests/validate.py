"""Validation of a set of manifest files: every file's own checks, then the checks across files.

Per file: YAML (loader), envelope (apiVersion, kind), JSON Schema, semantic checks. Across
files: duplicates, dangling references, cycles. Per-file results can come from a cache keyed
by content hash (see `afctl.manifests.cache`); a cache hit loads no YAML or schema library.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from afctl.diagnostics import Diagnostic, Severity, did_you_mean, error
from afctl.manifests.cache import ValidationCache
from afctl.manifests.discovery import Source, Uploaded, discover
from afctl.manifests.kinds import API_VERSION, KINDS
from afctl.manifests.limits import MAX_FILE_BYTES

if TYPE_CHECKING:
    from afctl.manifests.yaml_loader import Document
from afctl.manifests.model import Manifest
from afctl.manifests.references import RefRows, Resource, check_references

RESULT_SCHEMA_VERSION = 1


@dataclass
class FileResult:
    """The outcome of one file's own checks."""

    resources: list[Resource] = field(default_factory=list)
    refs: list[RefRows] = field(default_factory=list)
    """The references of each resource, in the same order."""
    diagnostics: list[Diagnostic] = field(default_factory=list)
    manifests: list[Manifest] = field(default_factory=list)

    def to_cache(self) -> dict[str, Any]:
        """A path-independent form for the cache."""
        return {
            "r": [
                [r.kind, r.name, r.line, r.col, r.document, refs]
                for r, refs in zip(self.resources, self.refs, strict=True)
            ],
            "d": [{k: v for k, v in d.to_dict().items() if k != "file"} for d in self.diagnostics],
        }

    @classmethod
    def from_cache(cls, entry: dict[str, Any], file: str) -> FileResult:
        # Refs stay the lists JSON gave: they unpack like `Ref`s, and building 30,000
        # tuples would cost more than the rest of a cached run's checks.
        rows = entry["r"]
        resources = [
            Resource(kind, name, file, line, col, doc) for kind, name, line, col, doc, _ in rows
        ]
        diagnostics = [Diagnostic.from_dict({**d, "file": file}) for d in entry["d"]]
        return cls(resources, [row[5] for row in rows], diagnostics)


@dataclass
class ValidationResult:
    """Everything `afctl validate` reports."""

    files: list[str]
    resources: list[Resource]
    diagnostics: list[Diagnostic]
    sources: dict[str, str] = field(default_factory=dict)
    """Text of the files that have diagnostics, for source snippets."""
    cached_files: int = 0

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.WARNING]

    @property
    def valid(self) -> bool:
        return not self.errors

    def to_cache(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "resources": [list(r) for r in self.resources],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }

    @classmethod
    def from_cache(cls, entry: dict[str, Any], raw: dict[str, bytes]) -> ValidationResult:
        diagnostics = [Diagnostic.from_dict(d) for d in entry["diagnostics"]]
        resources = [Resource(*r) for r in entry["resources"]]
        files = entry["files"]
        return cls(files, resources, diagnostics, _texts(diagnostics, raw), len(files))

    def to_dict(self) -> dict[str, Any]:
        """The documented `afctl validate -o json` structure."""
        return {
            "schema_version": RESULT_SCHEMA_VERSION,
            "valid": self.valid,
            "summary": {
                "files": len(self.files),
                "resources": len(self.resources),
                "errors": len(self.errors),
                "warnings": len(self.warnings),
            },
            "resources": [
                {"kind": r.kind, "name": r.name, "file": r.file, "line": r.line}
                for r in sorted(self.resources, key=lambda r: (r.kind, r.name, r.file, r.line))
            ],
            "diagnostics": [d.to_dict() for d in self.diagnostics],
        }


def _read_file(path: str) -> bytes | None:
    """The file's bytes, or None when it is too large to read (checked before reading)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        if size > MAX_FILE_BYTES:
            return None
        data = os.read(fd, size + 1)
        if len(data) <= size:
            return data
        chunks = [data]  # the file grew since fstat: read on, within the limit
        total = len(data)
        while chunk := os.read(fd, 65536):
            total += len(chunk)
            if total > MAX_FILE_BYTES:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _read(source: Source) -> tuple[bytes | None, Diagnostic | None]:
    try:
        data: bytes | None
        if source.data is not None:
            data = source.data
        elif source.path is None:
            data = sys.stdin.buffer.read(MAX_FILE_BYTES + 1)
        else:
            data = _read_file(source.path)
        if data is None or len(data) > MAX_FILE_BYTES:
            return None, error(
                "yaml.too-large",
                f"the file is larger than {MAX_FILE_BYTES:,} bytes",
                file=source.display,
                hint="split it into several files, or keep large data out of manifests",
            )
    except OSError as exc:
        return None, error(
            "io.read",
            f"cannot read the file: {exc.strerror or exc}",
            file=source.display,
            hint="check that the file exists and is readable",
        )
    return data, None


def _envelope(
    data: Any, where: dict[str, Any], positions: Any, diagnostics: list[Diagnostic]
) -> tuple[str | None, bool]:
    """The document's kind when it is known, and whether its apiVersion is right."""
    from afctl.manifests.positions import locate

    def at(*parts: str, key: bool = False) -> dict[str, Any]:
        line, col = locate(positions, parts, key=key)
        pointer = "".join("/" + p for p in parts)
        return {**where, "line": line + 1, "col": col + 1, "pointer": pointer}

    if not isinstance(data, dict):
        from afctl.manifests.schema_errors import type_name

        diagnostics.append(
            error(
                "manifest.not-mapping",
                f"a manifest must be a mapping, not {type_name(data)}",
                hint="start the document with apiVersion: afctl/v1, kind, metadata and spec",
                **at(),
            )
        )
        return None, False
    api_ok = True
    api = data.get("apiVersion")
    if api is None:
        diagnostics.append(
            error(
                "manifest.api-version",
                "missing apiVersion",
                hint=f"add apiVersion: {API_VERSION}"
                + (
                    "; if this file is not an afctl manifest, list it in .afctlignore"
                    if "kind" not in data
                    else ""
                ),
                **at(),
            )
        )
        api_ok = False
    elif api != API_VERSION:
        hint = f"write apiVersion: {API_VERSION}"
        if isinstance(api, str) and not api.startswith("afctl/"):
            hint += "; if this is not an afctl manifest, list the file in .afctlignore"
        diagnostics.append(
            error(
                "manifest.api-version",
                f"unknown apiVersion {api!r}; afctl reads {API_VERSION}",
                hint=hint,
                **at("apiVersion"),
            )
        )
        api_ok = False
    kind = data.get("kind")
    if kind is None:
        diagnostics.append(
            error(
                "manifest.kind",
                "missing kind",
                hint="add kind: one of " + ", ".join(KINDS),
                **at(),
            )
        )
        return None, api_ok
    if not isinstance(kind, str) or kind not in KINDS:
        hint = did_you_mean(str(kind), KINDS) or "kinds: " + ", ".join(KINDS)
        diagnostics.append(
            error("manifest.kind", f"unknown kind {kind!r}", hint=hint, **at("kind"))
        )
        return None, api_ok
    return str(kind), api_ok


def analyze_file(data: bytes, display: str) -> FileResult:
    """Every check on one file that depends only on its content."""
    from afctl.manifests.yaml_loader import load_bytes
    from afctl.safety.secrets import looks_like_secret

    loaded = load_bytes(data, display)
    result = FileResult(diagnostics=list(loaded.diagnostics))
    hints = {
        "may_have_templates": b"{{" in data or b"{%" in data or b"{#" in data,
        "may_have_references": b"${" in data,
        "may_have_secrets": looks_like_secret(data.decode("utf-8", "replace")),
    }
    for document in loaded.documents:
        where = {"file": display, "document": document.index}
        try:
            _analyze_document(document, where, loaded.text, hints, result)
        except Exception as exc:  # a check tripping over odd input must not become a traceback
            result.diagnostics.append(
                error(
                    "manifest.unchecked",
                    f"this document could not be fully checked ({type(exc).__name__}: {exc})",
                    line=document.line,
                    col=1,
                    **where,
                )
            )
    return result


def _analyze_document(
    document: Document,
    where: dict[str, Any],
    text: str | None,
    hints: dict[str, bool],
    result: FileResult,
) -> None:
    from afctl.manifests.checks import DocumentChecker
    from afctl.manifests.positions import locate
    from afctl.manifests.schema import validator
    from afctl.manifests.schema_errors import schema_diagnostics

    doc = document.data
    found: list[Diagnostic] = []
    kind, api_ok = _envelope(doc, where, document.positions, found)
    if kind is None:
        result.diagnostics.extend(found)
        return
    schema = validator(kind)
    if not schema.is_valid(doc):
        problems = schema_diagnostics(schema.iter_errors(doc), doc, document.positions, where)
        found.extend(d for d in problems if api_ok or d.pointer != "/apiVersion")
    checker = DocumentChecker(kind, doc, document.positions, where, text, **hints)
    checker.run()
    found.extend(checker.diagnostics)
    result.diagnostics.extend(found)
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        return
    line, col = locate(document.positions, ("metadata", "name"))
    result.resources.append(Resource(kind, name, where["file"], line + 1, col + 1, document.index))
    result.refs.append(checker.refs)
    result.manifests.append(Manifest(kind, name, doc, where["file"], document.line, document.index))


def _texts(diagnostics: Sequence[Diagnostic], raw: dict[str, bytes]) -> dict[str, str]:
    """Text of the files that have diagnostics, for source snippets."""
    files = {d.file for d in diagnostics if d.file}
    return {name: raw[name].decode("utf-8", "replace") for name in files if name in raw}


def content_digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


Progress = Callable[[int, int], None]
"""Called as files are checked with (files done, files in all); the CLI draws a bar from it."""


def validate_sources(
    sources: Sequence[Source],
    cache: ValidationCache | None = None,
    progress: Progress | None = None,
    external: Collection[tuple[str, str]] = (),
) -> tuple[ValidationResult, list[Manifest]]:
    """Validate `sources`; manifests are returned for files that were parsed (not cached).
    `external` resources (applied elsewhere) may be referred to without being in them."""
    resources: list[Resource] = []
    refs: list[RefRows] = []
    diagnostics: list[Diagnostic] = []
    manifests: list[Manifest] = []
    raw: dict[str, bytes] = {}
    digests: dict[str, str] = {}
    for source in sources:
        data, problem = _read(source)
        if data is None:
            assert problem is not None
            diagnostics.append(problem)
            continue
        raw[source.display] = data
        if cache is not None:
            digests[source.display] = content_digest(data)
    run_key = None
    if cache is not None and not diagnostics:
        run_key = content_digest(
            "\n".join(f"{name}\0{digest}" for name, digest in digests.items()).encode()
        )
        reused = cache.get_run(run_key)
        if reused is not None:
            return ValidationResult.from_cache(reused, raw), []
    cached = 0
    for done, source in enumerate(sources, start=1):
        if progress is not None:
            progress(done, len(sources))
        data = raw.get(source.display)
        if data is None:
            continue
        digest = digests.get(source.display, "")
        entry = cache.get(digest) if cache is not None else None
        if entry is not None:
            result = FileResult.from_cache(entry, source.display)
            cached += 1
        else:
            result = analyze_file(data, source.display)
            if cache is not None:
                cache.put(digest, result.to_cache())
            manifests.extend(result.manifests)
        resources.extend(result.resources)
        refs.extend(result.refs)
        diagnostics.extend(result.diagnostics)
    diagnostics.extend(check_references(resources, refs, external))
    texts = _texts(diagnostics, raw)
    ordered = sorted(set(diagnostics), key=Diagnostic.sort_key)
    report = ValidationResult([s.display for s in sources], resources, ordered, texts, cached)
    if cache is not None and run_key is not None:
        cache.put_run(run_key, report.to_cache())
    if cache is not None:
        cache.save()
    return report, manifests


def validate_paths(
    paths: Sequence[str | Uploaded],
    cache: ValidationCache | None = None,
    progress: Progress | None = None,
    external: Collection[tuple[str, str]] = (),
) -> tuple[ValidationResult, list[Manifest]]:
    return validate_sources(discover(list(paths)), cache, progress, external)

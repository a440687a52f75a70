"""Blueprint archives (`.afbp`): reproducible gzip'd tarballs, and their checked extraction.

Packing sorts the entries, fixes every mtime, owner and mode, and writes gzip without a name
or timestamp, so packing the same folder twice gives the same bytes. The first entry is
`MANIFEST.json`: the SHA-256 and size of every file, and of the blueprint's metadata.

Extraction trusts nothing in the archive: every member is checked before anything is
written — only regular files (and directories) with relative, normalized, unique (also
case-insensitively) names, within size caps for each file, the total, and the compression
ratio — and the files must be exactly those MANIFEST.json lists, with its hashes. Contents
are read by afctl and written by afctl (never by `tarfile.extract`, whose filters have had
bypasses), into a fresh temporary folder; the caller moves it into place. A refused archive
leaves nothing behind.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tarfile
import tempfile
import unicodedata
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from afctl.blueprints.package import Blueprint, canonical, metadata
from afctl.errors import UsageError

FORMAT = "afctl.blueprint/v1"
MANIFEST = "MANIFEST.json"
EPOCH = 315532800
"""1980-01-01T00:00:00Z: every entry's mtime (reproducible, and old enough for zip tools)."""


@dataclass(frozen=True)
class Limits:
    max_file: int = 20 * 1024 * 1024
    max_total: int = 200 * 1024 * 1024
    max_ratio: float = 200.0
    """Unpacked bytes per byte of archive (a gzip bomb has thousands)."""
    max_members: int = 10_000
    max_name: int = 255
    max_header: int = 64 * 1024
    """The largest PAX or GNU long-name header (a name is at most `max_name` characters)."""


class ArchiveRefused(UsageError):
    """An archive that fails a check; nothing was extracted."""


def pack(blueprint: Blueprint, target: Path) -> dict[str, Any]:
    """Write the blueprint's archive to `target` (atomically); returns its MANIFEST.json."""
    entries = []
    for relative in blueprint.files():
        data = (blueprint.root / relative).read_bytes()
        entries.append((relative, data))
    meta = canonical(metadata(blueprint))
    manifest = {
        "format": FORMAT,
        "name": blueprint.name,
        "version": blueprint.version,
        "metadata": {
            "sha256": hashlib.sha256(meta).hexdigest(),
            "size": len(meta),
            "content": metadata(blueprint),
        },
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in entries
        },
    }
    buffer = io.BytesIO()
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as zipped,
        tarfile.open(fileobj=zipped, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name, data in [(MANIFEST, canonical(manifest)), *entries]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), EPOCH, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    from afctl.files import write_atomically

    write_atomically(target, buffer.getvalue())
    return manifest


SAFE_NAME = re.compile(r"[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?")
"""A blueprint's name: a DNS label, so it is one plain path component everywhere."""


def shown(text: str, limit: int = 80) -> str:
    """`text` quoted for a message, cut to `limit` characters (a hostile name can be huge)."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


def checked_identity(name: object, version: object, where: str) -> tuple[str, str]:
    """A blueprint's name and version, once both are safe to build a path from.

    Raises:
        ArchiveRefused: the name is not a DNS label, or the version not a semantic version.
    """
    from afctl.blueprints.semver import Version

    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise ArchiveRefused(
            f"{where}: the blueprint name {shown(str(name))} is not a plain name "
            "(lowercase letters, digits and -)"
        )
    try:
        valid = isinstance(version, str) and Version(version).text == version
    except UsageError:
        valid = False
    if not valid or "/" in str(version) or "\\" in str(version):
        raise ArchiveRefused(
            f"{where}: the version {shown(str(version))} is not a semantic version (like 1.2.0)"
        )
    return name, str(version)


def _checked_name(name: str, limits: Limits) -> str:
    """The member's name if it is safe to create under a folder.

    Raises:
        ArchiveRefused: absolute, escaping, odd or too long.
    """
    if "\x00" in name or "\\" in name or len(name) > limits.max_name:
        raise ArchiveRefused(f"refused member {shown(name)}: not a plain relative name")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise ArchiveRefused(f"refused member {shown(name)}: an absolute path")
    parts = PurePosixPath(name).parts
    if any(part == ".." for part in parts):
        raise ArchiveRefused(f"refused member {shown(name)}: it climbs out with ..")
    clean = [p for p in parts if p not in ("", ".")]
    if not clean:
        raise ArchiveRefused(f"refused member {shown(name)}: an empty name")
    return "/".join(clean)


_BLOCK = 512
_LONG_HEADERS = {b"x": "a PAX header", b"g": "a PAX global header",
                 b"L": "a GNU long name", b"K": "a GNU long link name"}  # fmt: skip


def _header_size(field: bytes) -> int:
    """A tar header's size field: octal text, or base-256 when its first bit is set."""
    if field[:1] and field[0] & 0x80:
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\x00", b" ").strip()
    return int(text, 8) if text else 0


def _prescan(archive: Path, size: int, limits: Limits) -> None:
    """Walk the tar headers of the decompressed stream before `tarfile` reads any: refuse an
    oversized PAX or GNU long-name header (tarfile would read it whole into memory), too many
    members, and more unpacked bytes than the caps allow (a gzip bomb stops here).

    Raises:
        ArchiveRefused: a cap is exceeded, or the stream is not a tar archive.
    """
    cap = min(limits.max_total, int(limits.max_ratio * max(size, 1)))
    slack = (limits.max_members + 2) * 2 * _BLOCK  # the headers themselves
    read = 0
    members = 0
    try:
        with gzip.open(archive, "rb") as stream:
            while True:
                header = stream.read(_BLOCK)
                read += len(header)
                if len(header) < _BLOCK or header == bytes(_BLOCK):
                    return  # the end (tarfile reports a truncated one)
                try:
                    length = _header_size(header[124:136])
                except ValueError:
                    return  # not a header tarfile accepts either: it says so
                kind = header[156:157]
                if kind in _LONG_HEADERS and length > limits.max_header:
                    raise ArchiveRefused(
                        f"{archive}: {_LONG_HEADERS[kind]} of {length} bytes "
                        f"(at most {limits.max_header})"
                    )
                if kind not in _LONG_HEADERS:
                    members += 1
                    if members > limits.max_members:
                        raise ArchiveRefused(f"{archive}: more than {limits.max_members} members")
                remaining = -(-length // _BLOCK) * _BLOCK
                if read + remaining > cap + slack:
                    what = f"{limits.max_ratio:g}x its size" if cap < limits.max_total else (
                        f"{limits.max_total} bytes")  # fmt: skip
                    raise ArchiveRefused(f"{archive}: unpacks to over {what}")
                while remaining:
                    chunk = stream.read(min(remaining, 1 << 20))
                    if not chunk:
                        return
                    read += len(chunk)
                    remaining -= len(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise ArchiveRefused(f"{archive}: not a readable blueprint archive ({exc})") from None


def inspect(archive: Path, limits: Limits = Limits()) -> tuple[dict[str, Any], dict[str, bytes]]:
    """MANIFEST.json and every file's content, all checked; nothing is written.

    Raises:
        ArchiveRefused: the archive fails any check (see the module's text).
    """
    try:
        size = archive.stat().st_size
    except OSError as exc:
        raise ArchiveRefused(f"{archive}: cannot read it ({exc.strerror})") from None
    _prescan(archive, size, limits)
    try:
        tar = tarfile.open(archive, mode="r:gz")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise ArchiveRefused(f"{archive}: not a readable blueprint archive ({exc})") from None
    contents: dict[str, bytes] = {}
    seen_folded: dict[str, str] = {}
    total = 0
    try:
        with tar:
            for count, member in enumerate(tar, start=1):
                if count > limits.max_members:
                    raise ArchiveRefused(f"{archive}: more than {limits.max_members} members")
                name = _checked_name(member.name, limits)
                if member.isdir():
                    continue
                if not member.isreg():
                    what = (
                        "a symbolic link" if member.issym()
                        else "a hard link" if member.islnk()
                        else "a named pipe" if member.isfifo()
                        else "a device file" if member.ischr() or member.isblk()
                        else "not a regular file"
                    )  # fmt: skip
                    raise ArchiveRefused(f"refused member {shown(name)}: {what}")
                folded = unicodedata.normalize("NFC", name).casefold()
                if name in contents:
                    raise ArchiveRefused(f"refused member {shown(name)}: it appears twice")
                if folded in seen_folded:
                    raise ArchiveRefused(
                        f"refused member {shown(name)}: it differs from "
                        f"{shown(seen_folded[folded])} only in case"
                    )
                seen_folded[folded] = name
                if member.size > limits.max_file:
                    raise ArchiveRefused(
                        f"refused member {shown(name)}: over {limits.max_file} bytes"
                    )
                total += member.size
                if total > limits.max_total:
                    raise ArchiveRefused(f"{archive}: unpacks to over {limits.max_total} bytes")
                if total > limits.max_ratio * max(size, 1):
                    raise ArchiveRefused(
                        f"{archive}: unpacks to over {limits.max_ratio:g}x its size"
                    )
                handle = tar.extractfile(member)
                data = handle.read(member.size + 1) if handle is not None else b""
                if len(data) != member.size:
                    raise ArchiveRefused(f"refused member {shown(name)}: its size does not match")
                contents[name] = data
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ArchiveRefused(f"{archive}: corrupt archive ({exc})") from None
    for name in contents:  # a file cannot also be a folder of another member
        parent = name.rpartition("/")[0]
        while parent:
            if parent in contents:
                raise ArchiveRefused(
                    f"refused member {shown(name)}: {shown(parent)} is a file, not a folder"
                )
            parent = parent.rpartition("/")[0]
    return _verified(archive, contents), contents


def _verified(archive: Path, contents: dict[str, bytes]) -> dict[str, Any]:
    raw = contents.pop(MANIFEST, None)
    if raw is None:
        raise ArchiveRefused(f"{archive}: no {MANIFEST}")
    try:
        manifest = json.loads(raw)
        listed = dict(manifest["files"])
        meta = manifest["metadata"]
        if not isinstance(meta, dict):
            raise TypeError("metadata")
    except (ValueError, KeyError, TypeError, RecursionError):
        raise ArchiveRefused(f"{archive}: {MANIFEST} is not a blueprint manifest") from None
    if manifest.get("format") != FORMAT:
        raise ArchiveRefused(f"{archive}: {MANIFEST} is not in the {FORMAT} format")
    missing = sorted(set(listed) - set(contents))
    extra = sorted(set(contents) - set(listed))
    if missing or extra:
        raise ArchiveRefused(
            f"{archive}: {MANIFEST} does not match the files"
            + (f"; missing: {', '.join(missing)}" if missing else "")
            + (f"; not listed: {', '.join(extra)}" if extra else "")
        )
    for name, data in contents.items():
        expected = listed[name]
        if (
            not isinstance(expected, dict)
            or expected.get("size") != len(data)
            or (expected.get("sha256") != hashlib.sha256(data).hexdigest())
        ):
            raise ArchiveRefused(f"{archive}: {name} does not match its checksum in {MANIFEST}")
    content = canonical(meta.get("content"))
    if meta.get("sha256") != hashlib.sha256(content).hexdigest() or meta.get("size") != len(
        content
    ):
        raise ArchiveRefused(f"{archive}: the metadata does not match its checksum in {MANIFEST}")
    checked_identity(manifest.get("name"), manifest.get("version"), f"{archive}: {MANIFEST}")
    described = meta.get("content")
    if not isinstance(described, dict) or (described.get("name"), described.get("version")) != (
        manifest.get("name"),
        manifest.get("version"),
    ):
        raise ArchiveRefused(
            f"{archive}: {MANIFEST} names {manifest.get('name')} {manifest.get('version')}, "
            "but its metadata names another blueprint"
        )
    return dict(manifest)


def extract(archive: Path, parent: Path, limits: Limits = Limits()) -> tuple[Path, dict[str, Any]]:
    """Check the archive, then write its files into a new temporary folder under `parent`
    (created by afctl, files opened exclusively); returns the folder and MANIFEST.json. The
    caller moves the folder into place (`os.replace` within one file system).

    Raises:
        ArchiveRefused: any check fails (nothing is left behind).
    """
    manifest, contents = inspect(archive, limits)
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=".afbp-", dir=parent))
    try:
        for name, data in sorted(contents.items()):
            target = folder.joinpath(*name.split("/"))
            if not target.resolve().is_relative_to(folder.resolve()):  # defence in depth
                raise ArchiveRefused(f"refused member {name!r}: it leaves the folder")
            target.parent.mkdir(parents=True, exist_ok=True)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            with os.fdopen(os.open(target, flags, 0o644), "wb") as out:
                out.write(data)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return folder, manifest

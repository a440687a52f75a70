"""Built-in file tools, confined to a root folder: read_file, write_file, list_dir.

The requested path is checked as text first (relative, no `..`, no NUL, never into `.afctl`
or `.git`), then opened one component at a time from a descriptor of the root, each with
`O_NOFOLLOW` (like `openat`): a symbolic link anywhere on the way is refused, so swapping a
folder for a link between the check and the use gains nothing. Only regular files with a
single link are read or written (a hard link to a file outside, a FIFO or a device is
refused); files are opened non-blocking, and written without truncating until they are
checked.
"""

from __future__ import annotations

import asyncio
import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any

from afctl.providers.types import ToolSpec
from afctl.safety.capabilities import CONTROL_FOLDERS
from afctl.safety.paths import PathRefused
from afctl.tools.base import ToolFailed

DEFAULT_MAX_BYTES = 1024 * 1024
BUILTINS = ("read_file", "write_file", "list_dir")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

_SPECS = {
    "read_file": (
        "Read a text file. Paths are relative to the tool's folder.",
        {
            "type": "object",
            "properties": {"path": {"type": "string", "description": "Relative path of the file."}},
            "required": ["path"],
        },
    ),
    "write_file": (
        "Write a text file, replacing it if it exists. Paths are relative to the tool's folder.",
        {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "Relative path of the file."},
                "content": {"type": "string", "description": "The text to write."},
            },
            "required": ["path", "content"],
        },
    ),
    "list_dir": (
        "List a folder's entries (folders end with /). Paths are relative to the tool's folder.",
        {
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "Relative path of the folder.",
                    "default": ".",
                }
            },
        },
    ),
}


def parts_of(requested: object) -> list[str]:
    """The components of a path the model asked for, once it is plainly relative.

    Raises:
        PathRefused: absolute, climbing out, NUL bytes, or into a control folder.
    """
    if not isinstance(requested, str) or "\x00" in requested:
        raise PathRefused("the path must be text without NUL bytes")
    text = requested.replace("\\", "/")
    if text.startswith("/") or Path(requested).is_absolute() or (len(text) > 1 and text[1] == ":"):
        raise PathRefused(f"absolute paths are not allowed: {requested!r}")
    parts = [p for p in PurePosixPath(text).parts if p not in ("", ".")]
    if ".." in parts:
        raise PathRefused(f"'..' is not allowed in paths: {requested!r}")
    if CONTROL_FOLDERS & set(parts):
        raise PathRefused(f"{requested!r} is inside a folder file tools never touch")
    return parts


def _refused(requested: str, exc: OSError) -> PathRefused | ToolFailed:
    if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR):
        return PathRefused(f"{requested!r} is not a folder, or leads through a symbolic link")
    if exc.errno == errno.ENOENT:
        return ToolFailed(f"no such file or folder: {requested}")
    if exc.errno == errno.ENXIO:
        return PathRefused(f"{requested!r} is not a regular file")
    return ToolFailed(f"{requested}: {exc.strerror}")


class BuiltinFileTool:
    def __init__(
        self,
        name: str,
        builtin: str,
        root: Path,
        *,
        description: str | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout_s: float | None = None,
    ) -> None:
        default_description, parameters = _SPECS[builtin]
        self.spec = ToolSpec(name, description or default_description, parameters)
        self.builtin = builtin
        self.root = root
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def call(self, arguments: dict[str, Any]) -> Any:
        return await asyncio.to_thread(getattr(self, "_" + self.builtin), **arguments)

    @contextmanager
    def _folder(self, parts: list[str], requested: str, *, create: bool = False) -> Iterator[int]:
        """A descriptor of the folder `parts` under the root, reached without following any
        link (`create`: making missing folders on the way)."""
        try:
            fd = os.open(self.root, os.O_RDONLY | _DIRECTORY | _CLOEXEC)
        except OSError as exc:
            raise ToolFailed(f"the tool's folder cannot be opened: {exc.strerror}") from None
        try:
            for part in parts:
                flags = os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC
                try:
                    child = os.open(part, flags, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        pass
                    child = os.open(part, flags, dir_fd=fd)
                os.close(fd)
                fd = child
        except OSError as exc:
            os.close(fd)
            raise _refused(requested, exc) from None
        try:
            yield fd
        finally:
            os.close(fd)

    def _checked(self, fd: int, requested: str) -> os.stat_result:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PathRefused(f"{requested!r} is not a regular file")
        if info.st_nlink > 1:
            raise PathRefused(f"{requested!r} has other hard links; it is not read or written")
        return info

    def _read_file(self, path: str) -> str:
        parts = parts_of(path)
        if not parts:
            raise ToolFailed("give the path of a file")
        with self._folder(parts[:-1], path) as folder:
            try:
                fd = os.open(parts[-1], os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC,
                             dir_fd=folder)  # fmt: skip
            except OSError as exc:
                raise _refused(path, exc) from None
            with os.fdopen(fd, "rb") as file:
                info = self._checked(fd, path)
                if info.st_size > self.max_bytes:
                    raise ToolFailed(f"{path} is larger than {self.max_bytes} bytes")
                data = file.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise ToolFailed(f"{path} is larger than {self.max_bytes} bytes")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ToolFailed(f"{path} is not UTF-8 text") from None

    def _write_file(self, path: str, content: str) -> str:
        parts = parts_of(path)
        if not parts:
            raise ToolFailed("give the path of a file")
        data = content.encode("utf-8")
        if len(data) > self.max_bytes:
            raise ToolFailed(f"the content is larger than {self.max_bytes} bytes")
        with self._folder(parts[:-1], path, create=True) as folder:
            flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | _NONBLOCK | _CLOEXEC
            try:
                fd = os.open(parts[-1], flags, 0o644, dir_fd=folder)
            except OSError as exc:
                raise _refused(path, exc) from None
            with os.fdopen(fd, "wb") as file:
                self._checked(fd, path)  # before anything is truncated
                os.ftruncate(fd, 0)
                file.write(data)
        return f"wrote {len(data)} bytes to {path}"

    def _list_dir(self, path: str = ".") -> list[str]:
        parts = parts_of(path)
        with self._folder(parts, path) as folder:
            entries = []
            for name in os.listdir(folder):  # noqa: PTH208 - a descriptor, not a path
                if name in CONTROL_FOLDERS:
                    continue
                try:
                    info = os.stat(name, dir_fd=folder, follow_symlinks=False)
                except OSError:
                    continue
                entries.append(name + ("/" if stat.S_ISDIR(info.st_mode) else ""))
        return sorted(entries)

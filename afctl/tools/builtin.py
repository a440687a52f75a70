"""Built-in file tools, confined to a root folder: read_file, write_file, list_dir."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from afctl.providers.types import ToolSpec
from afctl.safety.paths import inside
from afctl.tools.base import ToolFailed

DEFAULT_MAX_BYTES = 1024 * 1024
BUILTINS = ("read_file", "write_file", "list_dir")

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

    def _read_file(self, path: str) -> str:
        target = inside(self.root, path)
        if not target.is_file():
            raise ToolFailed(f"no such file: {path}")
        if target.stat().st_size > self.max_bytes:
            raise ToolFailed(f"{path} is larger than {self.max_bytes} bytes")
        try:
            return target.read_text("utf-8")
        except UnicodeDecodeError:
            raise ToolFailed(f"{path} is not UTF-8 text") from None

    def _write_file(self, path: str, content: str) -> str:
        target = inside(self.root, path)
        data = content.encode("utf-8")
        if len(data) > self.max_bytes:
            raise ToolFailed(f"the content is larger than {self.max_bytes} bytes")
        target.parent.mkdir(parents=True, exist_ok=True)
        inside(self.root, str(target.parent.relative_to(self.root.resolve())))  # still inside
        target.write_bytes(data)
        return f"wrote {len(data)} bytes to {path}"

    def _list_dir(self, path: str = ".") -> list[str]:
        target = inside(self.root, path)
        if not target.is_dir():
            raise ToolFailed(f"no such folder: {path}")
        return sorted(entry.name + ("/" if entry.is_dir() else "") for entry in target.iterdir())

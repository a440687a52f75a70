"""Python tools: `package.module:function`, with the argument schema inferred from type hints
and the docstring (or given in the manifest). Sync functions run in a thread, async ones are
awaited."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import importlib
import inspect
import os
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

from afctl.errors import RunError
from afctl.providers.types import ToolSpec
from afctl.tools.decorator import ATTRIBUTE

_SCALARS = {str: "string", int: "integer", float: "number", bool: "boolean"}


_ROOTS: set[str] = set()
"""Repository roots python code has been imported from in this process."""


def _prefer_root(root: str, package: str) -> None:
    """Put `root` first on the import path, and forget `package` if it was imported from
    another repository's root: in one process (an eval, a server, tests) two repositories may
    both have a `tools` package, and each must get its own."""
    if sys.path[:1] != [root]:
        if root in sys.path:
            sys.path.remove(root)
        sys.path.insert(0, root)
    _ROOTS.add(root)
    cached = sys.modules.get(package)
    location = getattr(cached, "__file__", None) or ""
    others = [r for r in _ROOTS if r != root and location.startswith(r + os.sep)]
    if others and not location.startswith(root + os.sep):
        for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
            del sys.modules[name]
        importlib.invalidate_caches()


def import_entrypoint(entrypoint: str, root: Path) -> Callable[..., Any]:
    """The function named `package.module:function`, imported with `root` on the path.

    Raises:
        RunError: it cannot be imported or is not callable.
    """
    module_name, _, attribute = entrypoint.partition(":")
    root_text = str(root.resolve())
    _prefer_root(root_text, module_name.split(".")[0])
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except Exception as exc:  # ImportError, AttributeError, or the module's own failure
        raise RunError(
            f"cannot import {entrypoint}: {type(exc).__name__}: {exc}",
            hint=f"it is imported from {root_text}; check the module path and that it imports",
        ) from None
    if not callable(target):
        raise RunError(f"{entrypoint} is not a function")
    return typing.cast(Callable[..., Any], target)


def type_schema(annotation: Any) -> dict[str, Any]:
    """JSON Schema for a Python type hint."""
    if annotation is inspect.Parameter.empty or annotation is Any:
        return {}
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation]}
    if annotation is type(None):
        return {"type": "null"}
    if origin in (typing.Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        schema = (
            type_schema(members[0])
            if len(members) == 1
            else {"anyOf": [type_schema(a) for a in members]}
        )
        return schema
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin in (list, tuple, set, frozenset, typing.Sequence) or annotation in (list, tuple, set):
        items = type_schema(args[0]) if args else {}
        return {"type": "array", "items": items}
    if origin is dict or annotation is dict:
        return {
            "type": "object",
            "additionalProperties": type_schema(args[1]) if len(args) == 2 else {},
        }
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {"enum": [member.value for member in annotation]}
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        hints = typing.get_type_hints(annotation)
        fields = dataclasses.fields(annotation)
        return {
            "type": "object",
            "properties": {f.name: type_schema(hints.get(f.name, Any)) for f in fields},
            "required": [
                f.name
                for f in fields
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            ],
        }
    if typing.is_typeddict(annotation):
        hints = typing.get_type_hints(annotation)
        return {
            "type": "object",
            "properties": {k: type_schema(v) for k, v in hints.items()},
            "required": sorted(getattr(annotation, "__required_keys__", ())),
        }
    return {}


_SECTIONS = {"args", "arguments", "parameters", "returns", "raises", "yields", "examples", "note"}
_ARGUMENT = re.compile(r"^(\s+)(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(description, {argument: description}) from a Google-style docstring.

    The description is the first paragraph; arguments come from the `Args:` section.
    """
    if not doc:
        return "", {}
    paragraph: list[str] = []
    arguments: dict[str, str] = {}
    section = None
    current = None
    indent = 0
    for line in inspect.cleandoc(doc).splitlines():
        stripped = line.strip()
        if not line.startswith((" ", "\t")) and stripped.rstrip(":").lower() in _SECTIONS:
            section, current = stripped.rstrip(":").lower(), None
            continue
        if section is None:
            if not stripped and paragraph:
                section = "rest"
            elif stripped:
                paragraph.append(stripped)
        elif section in ("args", "arguments", "parameters"):
            match = _ARGUMENT.match(line)
            if match and (current is None or len(match.group(1)) <= indent):
                current, indent = match.group(2).lstrip("*"), len(match.group(1))
                arguments[current] = match.group(3).strip()
            elif current is not None and stripped:
                arguments[current] = f"{arguments[current]} {stripped}".strip()
    return " ".join(paragraph), arguments


def infer_spec(function: Callable[..., Any], name: str) -> tuple[str, dict[str, Any]]:
    """(description, parameters schema) of a function."""
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    description, documented = parse_docstring(inspect.getdoc(function))
    properties: dict[str, Any] = {}
    required = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        schema = type_schema(hints.get(parameter.name, parameter.annotation))
        if parameter.name in documented:
            schema = {**schema, "description": documented[parameter.name]}
        if parameter.default is parameter.empty:
            required.append(parameter.name)
        elif parameter.default is not None and isinstance(
            parameter.default, (str, int, float, bool)
        ):
            schema = {**schema, "default": parameter.default}
        properties[parameter.name] = schema
    parameters: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        parameters["required"] = required
    return description or f"Call {name}.", parameters


class PythonTool:
    def __init__(
        self,
        name: str,
        function: Callable[..., Any],
        description: str | None,
        parameters: dict[str, Any] | None,
        timeout_s: float | None,
    ) -> None:
        marks = getattr(function, ATTRIBUTE, None) or {}
        inferred_description, inferred_parameters = infer_spec(function, name)
        self.function = function
        self.spec = ToolSpec(
            name,
            description or marks.get("description") or inferred_description,
            parameters if parameters is not None else inferred_parameters,
        )
        self.timeout_s = timeout_s

    async def call(self, arguments: dict[str, Any]) -> Any:
        if inspect.iscoroutinefunction(self.function):
            return await self.function(**arguments)
        return await asyncio.to_thread(self.function, **arguments)

"""`@afctl.tool`: optional annotations on a python tool function."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, overload

F = TypeVar("F", bound=Callable[..., Any])

ATTRIBUTE = "__afctl_tool__"


@overload
def tool(function: F) -> F: ...


@overload
def tool(
    function: None = None, *, name: str | None = None, description: str | None = None
) -> Callable[[F], F]: ...


def tool(
    function: F | None = None, *, name: str | None = None, description: str | None = None
) -> F | Callable[[F], F]:
    """Mark a function as an afctl tool, optionally naming or describing it.

    Plain typed functions work without it; the decorator only overrides what afctl would infer
    from the function's name and docstring.
    """

    def mark(target: F) -> F:
        setattr(target, ATTRIBUTE, {"name": name, "description": description})
        return target

    return mark(function) if function is not None else mark

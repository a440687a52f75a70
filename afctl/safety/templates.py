"""Templates: jinja2's immutable sandbox with StrictUndefined, and a syntax check for manifests."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATE_MARKERS = ("{{", "{%", "{#")


@cache
def environment() -> ImmutableSandboxedEnvironment:
    """The one jinja2 environment afctl renders user templates with."""
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )


@dataclass(frozen=True)
class TemplateProblem:
    message: str
    line: int
    """1-based line within the template text."""


def is_template(text: str) -> bool:
    return any(marker in text for marker in TEMPLATE_MARKERS)


def check_template(text: str) -> TemplateProblem | None:
    """The first syntax error of a template, or None when it parses."""
    if not is_template(text):
        return None
    from jinja2 import TemplateSyntaxError

    try:
        environment().parse(text)
    except TemplateSyntaxError as exc:
        return TemplateProblem(exc.message or "invalid template", exc.lineno or 1)
    except Exception as exc:  # RecursionError, MemoryError, ... on hostile input
        return TemplateProblem(f"cannot parse the template: {type(exc).__name__}", 1)
    return None

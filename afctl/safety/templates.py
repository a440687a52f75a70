"""Templates: jinja2's immutable sandbox with StrictUndefined, and a syntax check for manifests."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Template
    from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATE_MARKERS = ("{{", "{%", "{#")


@cache
def environment() -> ImmutableSandboxedEnvironment:
    """The one jinja2 environment afctl renders user templates with: jinja2's immutable
    sandbox, bounded (see `afctl.safety.template_budget`)."""
    from afctl.safety.template_budget import bounded_environment

    return bounded_environment()


@dataclass(frozen=True)
class TemplateProblem:
    message: str
    line: int
    """1-based line within the template text."""


@lru_cache(maxsize=1024)
def compiled(text: str) -> Template:
    """A template compiled once per process (compiling costs far more than rendering)."""
    return environment().from_string(text)


def is_template(text: str) -> bool:
    return any(marker in text for marker in TEMPLATE_MARKERS)


_BLOCK = re.compile(r"\{\{(.*?)\}\}", re.S)
_SIMPLE = re.compile(r"-?\s*[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*|\[[0-9]+\])*\s*-?")


def _obviously_valid(text: str) -> bool:
    """True when every block is a plain `{{ name.path }}`: no need to parse it.

    Parsing with jinja2 costs ~100 us per template; almost all manifest templates are this
    simple, and anything else (statements, comments, expressions) goes to the real parser.
    """
    if "{%" in text or "{#" in text:
        return False
    rest = _BLOCK.sub("", text)
    if "{{" in rest:
        return False
    return all(_SIMPLE.fullmatch(inner.strip()) for inner in _BLOCK.findall(text))


def check_template(text: str) -> TemplateProblem | None:
    """The first syntax error of a template, or None when it parses."""
    if not is_template(text) or _obviously_valid(text):
        return None
    from jinja2 import TemplateSyntaxError, nodes

    env = environment()
    try:
        tree = env.parse(text)
        for node in tree.find_all((nodes.Filter, nodes.Test)):
            known = env.filters if isinstance(node, nodes.Filter) else env.tests
            if node.name not in known:
                from afctl.diagnostics import did_you_mean

                what = "filter" if isinstance(node, nodes.Filter) else "test"
                hint = did_you_mean(node.name, known)
                message = f"no {what} named {node.name!r}" + (f"; {hint}" if hint else "")
                return TemplateProblem(message, node.lineno or 1)
    except TemplateSyntaxError as exc:
        return TemplateProblem(exc.message or "invalid template", exc.lineno or 1)
    except Exception as exc:  # RecursionError, MemoryError, ... on hostile input
        return TemplateProblem(f"cannot parse the template: {type(exc).__name__}", 1)
    return None


MAX_RENDER_CHARS = 1_000_000
"""The most text one rendering may produce (a loop over a huge range fails instead)."""
MAX_RENDER_S = 5.0
"""The longest one rendering may take, checked as it produces text."""


class TemplateFailure(ValueError):
    """A template failed in a way jinja2 does not report as a TemplateError (`{{ 1 / 0 }}`,
    an index out of range in a format string)."""


class TemplateBudgetError(TemplateFailure):
    """A rendering went past its budget of text or time."""


def render(
    text: str,
    context: Mapping[str, Any],
    *,
    max_chars: int = MAX_RENDER_CHARS,
    max_seconds: float = MAX_RENDER_S,
) -> str:
    """`text` rendered over `context` in the sandbox, within a budget of output and time
    (jinja2's sandbox already caps `range()`; this bounds what loops produce).

    Raises:
        TemplateBudgetError: the budget ran out.
        TemplateFailure: the template failed otherwise (`{{ 1 / 0 }}`).
        jinja2.TemplateError: the template failed (an undefined name, a sandbox refusal).
    """
    from jinja2 import TemplateError

    from afctl.safety.template_budget import Budget, BudgetExceeded

    if not is_template(text):
        return text
    template = compiled(text)
    pieces: list[str] = []
    size = 0
    try:
        with Budget(max_chars, max_seconds) as budget:
            for piece in template.generate(**context):
                size += len(piece)
                if size > max_chars:
                    raise BudgetExceeded(f"the template produced more than {max_chars} characters")
                budget.tick()
                pieces.append(piece)
    except BudgetExceeded as exc:
        raise TemplateBudgetError(str(exc)) from None
    except (TemplateError, TemplateFailure):
        raise
    except RecursionError:
        raise TemplateFailure("the template nests too deeply") from None
    except Exception as exc:  # the user's template failed: say how, never crash
        raise TemplateFailure(f"{type(exc).__name__}: {exc}") from None
    return "".join(pieces)


_SINGLE = re.compile(r"\s*\{\{(?P<expression>(?:(?!\}\}|\{\{|\{%|\{#).)*)\}\}\s*", re.S)


def render_value(text: str, context: Mapping[str, Any], **budget: Any) -> Any:
    """A template's value. A string that is one `{{ expression }}` (nothing around it but
    spaces) gives the expression's value with its type: a list stays a list, a number a
    number. Anything else renders to text.

    Raises:
        the errors of `render`.
    """
    import json

    match = _SINGLE.fullmatch(text)
    expression = match["expression"].strip() if match else ""
    if not expression or expression[0] in "-+" or expression[-1] in "-+":
        return render(text, context, **budget)  # text, or whitespace control: plain text
    try:
        encoded = render("{{ (" + expression + ") | tojson }}", context, **budget)
    except TemplateFailure:
        return render(text, context, **budget)  # a value JSON cannot hold: its text
    return json.loads(encoded)

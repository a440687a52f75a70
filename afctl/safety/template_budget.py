"""Budgets inside jinja2's sandbox, so no template (an instruction, a step input, a blueprint
manifest, a webhook mapping) can run or grow without bound.

jinja2's sandbox stops attribute tricks and caps `range()`, but a template that loops without
printing (`{% for a in range(99999) %}{% for b in range(99999) %}{% endfor %}{% endfor %}`) or
builds one huge value (`'x'.ljust(4000000000)`, `'%999999999d' % 1`, doubling a string in a
loop, nesting list literals) ran until killed. Here, every template is rewritten as it is
parsed: each loop iteration (and each item a loop's `if` looks at) ticks the budget (at most
MAX_ITERATIONS, and the render's time limit is checked at each tick), and every list, tuple,
dict and `~` concatenation it builds is measured. Operators and the methods and filters that
grow text check the size of what they would make before making it. Everything is measured
the way `afctl.safety.expr` measures: shared parts count each time they appear.
"""

from __future__ import annotations

import contextvars
import re
import string
import time
from typing import Any

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from afctl.safety.expr import weight

MAX_ITERATIONS = 1_000_000
"""Loop iterations (and calls) one rendering may make."""
MAX_VALUE = 1_000_000
"""The largest string (characters) or collection (its parts counted however shared) a
template may build: the same as the rendering's output budget."""
MAX_INT_BITS = 4096

_GROWERS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})
_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


class BudgetExceeded(Exception):
    """A rendering went past its budget of iterations, time or size."""


class Budget:
    """The budget of one rendering (a context manager: the template's ticks find it)."""

    def __init__(self, max_chars: int = MAX_VALUE, max_seconds: float | None = None) -> None:
        self.max_value = max_chars
        self.max_seconds = max_seconds
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.iterations = 0
        self._token: contextvars.Token[Budget | None] | None = None

    def __enter__(self) -> Budget:
        self._token = _current.set(self)
        return self

    def __exit__(self, *_: object) -> None:
        if self._token is not None:
            _current.reset(self._token)

    def tick(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise BudgetExceeded(f"the template made more than {MAX_ITERATIONS} loop iterations")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExceeded(f"the template took longer than {self.max_seconds:g} s")

    def size(self, size: int, what: str = "value") -> None:
        if size > self.max_value:
            raise BudgetExceeded(f"the template would build a {what} longer than {self.max_value}")

    def value(self, value: Any) -> Any:
        self.size(weight(value, self.max_value))
        return value


_current: contextvars.ContextVar[Budget | None] = contextvars.ContextVar(
    "afctl_template_budget", default=None
)


def current() -> Budget:
    """The budget of the rendering under way (a fresh default one outside any)."""
    return _current.get() or Budget()


def _tick() -> bool:
    current().tick()
    return True


def _sized(value: Any) -> Any:
    return current().value(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _check_format(text: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Refuse a `str.format` whose widths or precisions would build a huge string."""
    budget = current()
    nested = False
    try:
        fields = list(string.Formatter().parse(text))
    except ValueError:
        return  # format() itself says what is wrong
    for _, _, spec, _ in fields:
        if spec:
            if "{" in spec:
                nested = True
            for number in re.findall(r"\d+", spec):
                budget.size(int(number) if len(number) < 12 else 10**12, "formatted field")
    if nested:  # widths given as arguments
        for value in (*args, *kwargs.values()):
            budget.size(_int(value), "formatted field")


def _check_percent(text: str, values: Any) -> None:
    """Refuse `'%999999999d' % 1` (and widths given by `*`)."""
    budget = current()
    star = False
    for width, precision in _PERCENT.findall(text):
        for number in (width, precision):
            if number == "*":
                star = True
            elif number:
                budget.size(int(number) if len(number) < 12 else 10**12, "formatted field")
    if star:
        for value in values if isinstance(values, tuple) else (values,):
            budget.size(_int(value), "formatted field")


def _replaced_size(text: str, old: str, new: str, count: int = -1) -> int:
    found = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """jinja2's immutable sandbox with the budgets above."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = current()
        budget.tick()
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, (str, list, tuple)) and isinstance(times, int):
                    count = max(times, 0)
                    if count:
                        budget.size(weight(seq, budget.max_value // count + 1) * count)
        elif operator == "**" and _int(left) and _int(right) > 0 and abs(left) > 1:
            if (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
                raise BudgetExceeded(f"the result would exceed {MAX_INT_BITS} bits")
        elif operator == "%" and isinstance(left, str):
            _check_percent(left, right)
        result = super().call_binop(context, operator, left, right)
        if operator == "+" and isinstance(result, (str, list, tuple)):
            budget.value(result)
        return result

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        if __obj is not _tick:
            budget.tick()
        target = getattr(__obj, "__wrapped__", __obj)  # the sandbox wraps str.format
        owner = getattr(target, "__self__", None)
        name = getattr(target, "__name__", "")
        if isinstance(owner, str):
            if name in _GROWERS:
                for value in (*args, *kwargs.values()):
                    budget.size(_int(value) * (max(owner.count("\t"), 1) if name ==
                                "expandtabs" else 1))  # fmt: skip
            elif name in ("format", "format_map"):
                _check_format(owner, args, kwargs)
            elif name == "replace" and len(args) >= 2:
                old, new = str(args[0]), str(args[1])
                count = _int(args[2]) if len(args) > 2 else -1
                budget.size(_replaced_size(owner, old, new, count))
            elif name == "join" and args:
                budget.size(weight(args[0], budget.max_value) + len(owner) * _length(args[0]))
        return super().call(__context, __obj, *args, **kwargs)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _bound(tree)
        return tree


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return 0


def _tick_call(lineno: int) -> nodes.Call:
    return nodes.Call(nodes.Name("afctl_tick", "load"), [], [], None, None, lineno=lineno)


def _wrapped(node: nodes.Node) -> nodes.Node:
    """A node that builds a collection or a concatenation, measured when it is built."""
    builds = isinstance(node, (nodes.List, nodes.Dict, nodes.Concat)) or (
        isinstance(node, nodes.Tuple) and node.ctx == "load"
    )
    if not builds:
        return node
    return nodes.Call(nodes.Name("afctl_sized", "load"), [node], [], None, None,
                      lineno=node.lineno)  # fmt: skip


def _bound(node: nodes.Node) -> None:
    """Rewrite a parsed template in place: loops tick, built values are measured."""
    for field in node.fields:
        value = getattr(node, field, None)
        if isinstance(value, nodes.Node):
            _bound(value)
            setattr(node, field, _wrapped(value))
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, nodes.Node):
                    _bound(item)
            setattr(node, field, [_wrapped(v) if isinstance(v, nodes.Node) else v for v in value])
    if isinstance(node, nodes.For):
        node.body.insert(0, nodes.ExprStmt(_tick_call(node.lineno), lineno=node.lineno))
        if node.test is not None:
            node.test = nodes.And(_tick_call(node.lineno), node.test, lineno=node.lineno)


def _bounded_filters(environment: BoundedSandbox) -> None:
    """The built-in filters that grow text, checking what they would make first."""
    filters = environment.filters
    center, indent, replace, join, format_ = (
        filters["center"], filters["indent"], filters["replace"], filters["join"],
        filters["format"],
    )  # fmt: skip

    def do_center(value: Any, width: int = 80) -> Any:
        current().size(_int(width))
        return center(value, width)

    def do_indent(value: Any, width: Any = 4, first: bool = False, blank: bool = False) -> Any:
        text = str(value)
        prefix = width if isinstance(width, str) else " " * min(_int(width), MAX_VALUE + 1)
        current().size(len(text) + (text.count("\n") + 1) * len(prefix))
        return indent(value, width, first, blank)

    def do_replace(eval_ctx: Any, value: Any, old: Any, new: Any, count: Any = None) -> Any:
        current().size(_replaced_size(str(value), str(old), str(new), _int(count) if count
                                      is not None else -1))  # fmt: skip
        return replace(eval_ctx, value, old, new, count)

    def do_join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> Any:
        current().size(weight(value, MAX_VALUE) + len(str(d)) * _length(value))
        return join(eval_ctx, value, d, attribute)

    def do_format(value: Any, *args: Any, **kwargs: Any) -> Any:
        _check_percent(str(value), args or kwargs)
        return format_(value, *args, **kwargs)

    for name, original in (("replace", replace), ("join", join)):
        for marker in ("jinja_pass_arg",):  # keep how jinja2 passes the eval context
            if hasattr(original, marker):
                setattr(do_replace if name == "replace" else do_join, marker,
                        getattr(original, marker))  # fmt: skip
    filters.update(center=do_center, indent=do_indent, replace=do_replace, join=do_join,
                   format=do_format)  # fmt: skip


def bounded_environment() -> BoundedSandbox:
    """The environment afctl renders user templates with."""
    from jinja2 import StrictUndefined

    environment = BoundedSandbox(
        undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True
    )
    environment.globals.update(afctl_tick=_tick, afctl_sized=_sized)
    _bounded_filters(environment)
    return environment

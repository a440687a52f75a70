"""afctl's safe expression language: Python-like syntax over JSON data, checked by an allow-list.

Expressions appear in `when:` conditions, tool approval rules and eval assertions. They are
parsed with Python's `ast` module (parsing runs no code) and every node is checked against an
allow-list; nothing is ever passed to `eval`. Allowed:

    literals        "text", 3, 2.5, true/false/null (also True/False/None), [..], {..: ..}
    names           bound by the context: inputs, steps, vars, item, args, output, ...
    field access    steps.triage.output (a dict lookup), x["key"], x[0], x[1:3]
    operators       + - * / // % **, ==, !=, <, <=, >, >=, in, not in, and, or, not, a if c else b
    functions       the fixed set in FUNCTIONS, called by name: len(x), lower(s), matches(s, "re")

Refused: attribute names starting with "_", method calls, comprehensions, lambdas, f-strings,
walrus, starred arguments, keyword arguments, and anything not listed above.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from afctl.errors import UserError

MAX_LENGTH = 2000
MAX_NODES = 400

FUNCTIONS = frozenset(
    {
        "len", "lower", "upper", "startswith", "endswith", "contains", "matches",
        "int", "float", "str", "round", "min", "max", "sum", "any", "all", "keys", "values",
    }
)  # fmt: skip
CONSTANT_NAMES = frozenset({"true", "false", "null", "True", "False", "None"})

_ALLOWED = (
    ast.Expression,
    ast.BoolOp,
    ast.And,
    ast.Or,
    ast.BinOp,
    ast.Add,
    ast.Sub,
    ast.Mult,
    ast.Div,
    ast.FloorDiv,
    ast.Mod,
    ast.Pow,
    ast.UnaryOp,
    ast.Not,
    ast.USub,
    ast.UAdd,
    ast.Compare,
    ast.Eq,
    ast.NotEq,
    ast.Lt,
    ast.LtE,
    ast.Gt,
    ast.GtE,
    ast.In,
    ast.NotIn,
    ast.IfExp,
    ast.Call,
    ast.Constant,
    ast.Name,
    ast.Load,
    ast.Attribute,
    ast.Subscript,
    ast.Slice,
    ast.List,
    ast.Tuple,
    ast.Dict,
)

_DESCRIBE = {
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "comprehensions",
    ast.Lambda: "lambdas",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.NamedExpr: "assignment expressions",
    ast.Starred: "starred arguments",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Set: "set literals",
    ast.BitAnd: "bitwise operators",
    ast.BitOr: "bitwise operators",
    ast.BitXor: "bitwise operators",
    ast.LShift: "shift operators",
    ast.RShift: "shift operators",
    ast.Invert: "bitwise operators",
    ast.MatMult: "the @ operator",
    ast.Is: "`is` (use ==)",
    ast.IsNot: "`is not` (use !=)",
}


class ExpressionError(UserError):
    """An expression is not valid in afctl's expression language."""

    def __init__(self, message: str, *, offset: int = 0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.offset = offset
        """0-based character offset of the problem within the expression."""


@dataclass(frozen=True)
class Expression:
    """A parsed expression that passed the allow-list."""

    source: str
    tree: ast.Expression
    names: frozenset[str]
    """The context names it reads."""


def _offset(node: ast.AST) -> int:
    return int(getattr(node, "col_offset", 0) or 0)


def parse_expression(source: str, names: Iterable[str] | None = None) -> Expression:
    """Parse and check `source`; raises ExpressionError and nothing else.

    Args:
        source: the expression text.
        names: the context names it may use; any name is accepted when None.
    """
    try:
        return _parse(source, None if names is None else frozenset(names))
    except ExpressionError:
        raise
    except Exception as exc:  # parsing hostile text may raise odd things; never let them out
        raise ExpressionError(f"cannot parse the expression: {exc}") from None


def _parse(source: str, allowed_names: frozenset[str] | None) -> Expression:
    if not isinstance(source, str):
        raise ExpressionError("an expression must be a string")
    if len(source) > MAX_LENGTH:
        raise ExpressionError(f"the expression is longer than {MAX_LENGTH} characters")
    if "\x00" in source:
        raise ExpressionError("the expression contains a NUL character")
    text = source.strip()
    if not text:
        raise ExpressionError("the expression is empty")
    # Newlines would let a multi-line YAML scalar smuggle statements; expressions are one line.
    text = " ".join(text.splitlines())
    try:
        with warnings.catch_warnings():  # e.g. "invalid escape sequence": not for the user
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        offset = max((exc.offset or 1) - 1, 0)
        raise ExpressionError(
            f"invalid expression syntax: {exc.msg}", offset=offset, hint=_syntax_hint(text)
        ) from None
    used: set[str] = set()
    for count, node in enumerate(ast.walk(tree), start=1):
        if count > MAX_NODES:
            raise ExpressionError(f"the expression has more than {MAX_NODES} parts")
        if not isinstance(node, _ALLOWED):
            what = _DESCRIBE.get(type(node), type(node).__name__)
            raise ExpressionError(f"{what} are not allowed in expressions", offset=_offset(node))
        if isinstance(node, ast.Constant) and not (
            node.value is None or isinstance(node.value, (str, int, float, bool))
        ):
            raise ExpressionError(
                f"{type(node.value).__name__} literals are not allowed", offset=_offset(node)
            )
        elif isinstance(node, ast.Attribute):
            if node.attr.startswith("_"):
                raise ExpressionError(
                    f'field names starting with "_" are not allowed ({node.attr})',
                    offset=_offset(node),
                )
        elif isinstance(node, ast.Call):
            _check_call(node)
        elif isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise ExpressionError(
                    f'names starting with "_" are not allowed ({node.id})', offset=_offset(node)
                )
            if node.id not in CONSTANT_NAMES and node.id not in FUNCTIONS:
                used.add(node.id)
    if allowed_names is not None:
        for name in sorted(used):
            if name not in allowed_names:
                from afctl.diagnostics import did_you_mean

                options = ", ".join(sorted(allowed_names)) or "none"
                raise ExpressionError(
                    f'unknown name "{name}" (available here: {options})',
                    offset=text.find(name),
                    hint=did_you_mean(name, allowed_names),
                )
    return Expression(source, tree, frozenset(used))


def _check_call(node: ast.Call) -> None:
    if not isinstance(node.func, ast.Name):
        if not isinstance(node.func, _ALLOWED):
            what = _DESCRIBE.get(type(node.func), type(node.func).__name__)
            raise ExpressionError(f"{what} are not allowed in expressions", offset=_offset(node))
        if isinstance(node.func, ast.Attribute) and node.func.attr in FUNCTIONS:
            hint = f"write {node.func.attr}(x, ...) instead of x.{node.func.attr}(...)"
        else:
            hint = None
        raise ExpressionError(
            "only the built-in functions can be called, by name", offset=_offset(node), hint=hint
        )
    if node.func.id not in FUNCTIONS:
        from afctl.diagnostics import did_you_mean

        raise ExpressionError(
            f'unknown function "{node.func.id}"',
            offset=_offset(node),
            hint=did_you_mean(node.func.id, FUNCTIONS)
            or "available: " + ", ".join(sorted(FUNCTIONS)),
        )
    if node.keywords:
        raise ExpressionError("keyword arguments are not allowed", offset=_offset(node))


def _syntax_hint(text: str) -> str | None:
    if "&&" in text or "||" in text:
        return "use `and` / `or` instead of && / ||"
    if "===" in text:
        return "use == to compare"
    if "=" in text and "==" not in text and "!=" not in text and "<=" not in text:
        return "use == to compare"
    if "!" in text and "!=" not in text:
        return "use `not` instead of !"
    return None

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

`evaluate` walks the checked tree itself over JSON-like data, with budgets on steps, integer
size and the length of strings and lists it builds, so `'a' * 10**9`, `9**9**9` and
`'%999999999d' % 1` fail at once with an ExpressionError, the only error that escapes.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from afctl.safety.expr_values import (
    MAX_INT_BITS,
    MAX_LITERAL,
    MAX_SIZE,
    call_function,
    check_size,
    checked,
    field_of,
    int_checked,
    is_number,
    kind_of,
    need_numbers,
    plain,
    power,
    sized,
)
from afctl.safety.expr_values import (
    ExpressionError as ExpressionError,
)
from afctl.safety.expr_values import (
    weight as weight,
)

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


# -- evaluation --------------------------------------------------------------------------------

MAX_STEPS = 10_000
"""Evaluation steps (nodes visited, items iterated by functions) per evaluation."""

_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: lambda a, b: a == b,
    ast.NotEq: lambda a, b: a != b,
    ast.Lt: lambda a, b: a < b,
    ast.LtE: lambda a, b: a <= b,
    ast.Gt: lambda a, b: a > b,
    ast.GtE: lambda a, b: a >= b,
}


def evaluate(expression: Expression | str, context: Mapping[str, Any]) -> Any:
    """The value of `expression` over `context` (JSON-like data: dicts, lists, strings,
    numbers, booleans, null). Raises ExpressionError and nothing else.

    Field access reads dict keys (a missing key, or a field of null, is null); there is no
    attribute access on Python objects. Budgets bound the work: MAX_STEPS, MAX_INT_BITS for
    integers, MAX_SIZE for strings and lists built.
    """
    parsed = parse_expression(expression) if isinstance(expression, str) else expression
    try:
        return _Evaluator(context).visit(parsed.tree.body)
    except ExpressionError:
        raise
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply") from None
    except Exception as exc:  # a type error, a division by zero: the expression's fault
        raise ExpressionError(f"cannot evaluate {parsed.source!r}: {_describe(exc)}") from None


def truthy(expression: Expression | str, context: Mapping[str, Any]) -> bool:
    """Whether the expression holds (`when:` conditions, approval rules)."""
    return bool(evaluate(expression, context))


def _describe(exc: Exception) -> str:
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, TypeError):
        return str(exc).replace("NoneType", "null").replace("'dict'", "'object'")
    return f"{type(exc).__name__}: {exc}"


class _Evaluator:
    def __init__(self, context: Mapping[str, Any]) -> None:
        self.context = context
        self.steps = 0

    def spend(self, steps: int = 1) -> None:
        self.steps += steps
        if self.steps > MAX_STEPS:
            raise ExpressionError(f"the expression takes more than {MAX_STEPS} steps")

    def visit(self, node: ast.AST) -> Any:
        self.spend()
        method = getattr(self, "visit_" + type(node).__name__, None)
        if method is None:  # the allow-list stops these at parse time
            raise ExpressionError(f"{type(node).__name__} cannot be evaluated")
        return method(node)

    def visit_Constant(self, node: ast.Constant) -> Any:
        return checked(node.value)

    def visit_Name(self, node: ast.Name) -> Any:
        if node.id in ("true", "True"):
            return True
        if node.id in ("false", "False"):
            return False
        if node.id in ("null", "None"):
            return None
        if node.id not in self.context:
            raise ExpressionError(f'unknown name "{node.id}"', offset=_offset(node))
        return plain(self.context[node.id])

    def visit_Attribute(self, node: ast.Attribute) -> Any:
        return field_of(self.visit(node.value), node.attr)

    def visit_Subscript(self, node: ast.Subscript) -> Any:
        value = self.visit(node.value)
        if isinstance(node.slice, ast.Slice):
            if not isinstance(value, (str, list)):
                raise ExpressionError("only strings and lists can be sliced")
            parts = [None if p is None else self.visit(p) for p in
                     (node.slice.lower, node.slice.upper, node.slice.step)]  # fmt: skip
            if not all(p is None or isinstance(p, int) for p in parts):
                raise ExpressionError("slice bounds must be integers")
            return value[slice(*parts)]
        key = self.visit(node.slice)
        if value is None:
            return None
        if isinstance(value, dict):
            return plain(value.get(key)) if isinstance(key, (str, int, float, bool)) else None
        if isinstance(value, (list, str)):
            if not isinstance(key, int) or isinstance(key, bool):
                raise ExpressionError("list and string indexes must be integers")
            return plain(value[key]) if -len(value) <= key < len(value) else None
        raise ExpressionError(f"cannot index {kind_of(value)}")

    def visit_List(self, node: ast.List) -> list[Any]:
        return sized([self.visit(e) for e in node.elts], MAX_LITERAL)

    def visit_Tuple(self, node: ast.Tuple) -> list[Any]:
        return sized([self.visit(e) for e in node.elts], MAX_LITERAL)

    def visit_Dict(self, node: ast.Dict) -> dict[Any, Any]:
        result = {}
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise ExpressionError("** in dict literals is not allowed")
            k = self.visit(key)
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise ExpressionError("dict keys must be strings or numbers")
            result[k] = self.visit(value)
        if weight(result, MAX_LITERAL) > MAX_LITERAL:
            raise ExpressionError(f"the result would be longer than {MAX_LITERAL}")
        return result

    def visit_BoolOp(self, node: ast.BoolOp) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.visit(operand)
            if isinstance(node.op, ast.And) and not value:
                return value
            if isinstance(node.op, ast.Or) and value:
                return value
        return value

    def visit_UnaryOp(self, node: ast.UnaryOp) -> Any:
        value = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not value
        if not is_number(value):
            raise ExpressionError(f"cannot negate {kind_of(value)}")
        return -value if isinstance(node.op, ast.USub) else +value

    def visit_IfExp(self, node: ast.IfExp) -> Any:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Compare(self, node: ast.Compare) -> bool:
        left = self.visit(node.left)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.visit(right_node)
            if isinstance(op, (ast.In, ast.NotIn)):
                if not isinstance(right, (str, list, dict)):
                    raise ExpressionError(
                        f"`in` needs a string, list or object, not {kind_of(right)}"
                    )
                if isinstance(right, str) and not isinstance(left, str):
                    raise ExpressionError("`in` a string needs a string")
                self.spend(len(right) // 100)
                result = (left in right) == isinstance(op, ast.In)
            else:
                result = _COMPARE[type(op)](left, right)
            if not result:
                return False
            left = right
        return True

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        op = node.op
        if isinstance(op, ast.Add):
            if isinstance(left, str) and isinstance(right, str):
                check_size(len(left) + len(right))
                return left + right
            if isinstance(left, list) and isinstance(right, list):
                check_size(len(left) + len(right))
                return sized(left + right)
            need_numbers(left, right, "+")
            return int_checked(left + right)
        if isinstance(op, ast.Mult):
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, (str, list))
                    and isinstance(times, int)
                    and not isinstance(times, bool)
                ):
                    times = max(times, 0)
                    if isinstance(seq, list) and times:  # its parts repeat: count them all
                        check_size(weight(seq, MAX_SIZE // times + 1) * times)
                    check_size(len(seq) * times)
                    return seq * times
            need_numbers(left, right, "*")
            if (
                isinstance(left, int)
                and isinstance(right, int)
                and left.bit_length() + right.bit_length() > MAX_INT_BITS
            ):
                raise ExpressionError(f"the result would exceed {MAX_INT_BITS} bits")
            return int_checked(left * right)
        need_numbers(left, right, _SYMBOL.get(type(op), "?"))  # no `%` formatting of strings
        if isinstance(op, ast.Pow):
            return power(left, right)
        if isinstance(op, ast.Sub):
            return int_checked(left - right)
        if isinstance(op, ast.Div):
            return left / right
        if isinstance(op, ast.FloorDiv):
            return left // right
        if isinstance(op, ast.Mod):
            return left % right
        raise ExpressionError("unsupported operator")

    def visit_Call(self, node: ast.Call) -> Any:
        assert isinstance(node.func, ast.Name)  # parse time makes sure
        arguments = [self.visit(a) for a in node.args]
        for argument in arguments:
            if isinstance(argument, (str, list, dict)):
                self.spend(len(argument) // 100)
        return call_function(node.func.id, arguments)


_SYMBOL = {ast.Sub: "-", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}

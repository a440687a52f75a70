"""The values afctl's expressions compute with: JSON-like data only, every built string, list
and integer within a budget, and the fixed set of functions (`FUNCTIONS` in `expr`).

`ExpressionError` is the one error an expression raises, when it is parsed or evaluated.
"""

from __future__ import annotations

import json
from typing import Any

from afctl.errors import UserError

MAX_INT_BITS = 4096
MAX_SIZE = 100_000
"""Longest string (characters) or list (items, its parts counted however shared) an
expression may build."""
MAX_LITERAL = 1_000_000
"""A list or object literal may gather more (its parts already exist: `[inputs.a, inputs.b]`),
but never as much as a repetition of shared parts could."""
MAX_PATTERN = 1000


class ExpressionError(UserError):
    """An expression is not valid in afctl's expression language."""

    def __init__(self, message: str, *, offset: int = 0, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.offset = offset
        """0-based character offset of the problem within the expression."""


def kind_of(value: Any) -> str:
    from afctl.diagnostics import type_name

    return type_name(value).replace("mapping", "object")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def need_numbers(left: Any, right: Any, symbol: str) -> None:
    if not (is_number(left) and is_number(right)):
        raise ExpressionError(f"{symbol} needs numbers, not {kind_of(left)} and {kind_of(right)}")


def int_checked(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise ExpressionError(f"the result would exceed {MAX_INT_BITS} bits")
    return value


def check_size(size: int) -> None:
    if size > MAX_SIZE:
        raise ExpressionError(f"the result would be longer than {MAX_SIZE}")


def weight(value: Any, limit: int = MAX_SIZE) -> int:
    """How much a value holds, counting shared parts every time they appear (as printing or
    comparing it would): one per element, plus each string's length. Stops counting past
    `limit`, so measuring costs at most `limit` steps."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += max(len(item), 1)
        elif isinstance(item, list):
            total += max(len(item), 1)
            stack.extend(item)
        elif isinstance(item, dict):
            total += max(len(item), 1)
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
        if total > limit:
            return total
    return total


def sized(items: list[Any], limit: int = MAX_SIZE) -> list[Any]:
    """A list built by the expression, within `limit` however its parts are shared
    (`[[1]*100000]*100000` is 10^10, not 100,000)."""
    if weight(items, limit) > limit:
        raise ExpressionError(f"the result would be longer than {limit}")
    return items


def power(base: Any, exponent: Any) -> Any:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if abs(base) > 1 and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
            raise ExpressionError(f"the result would exceed {MAX_INT_BITS} bits")
    elif isinstance(exponent, (int, float)) and abs(exponent) > MAX_INT_BITS:
        raise ExpressionError("the exponent is too large")
    result = base**exponent
    if isinstance(result, complex):
        raise ExpressionError("the result is not a real number")
    return int_checked(result)


def field_of(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, dict):
        return plain(value.get(name))
    raise ExpressionError(f'{kind_of(value)} has no field "{name}"')


def checked(value: Any) -> Any:
    if isinstance(value, str):
        check_size(len(value))
    return int_checked(value)


def plain(value: Any) -> Any:
    """Context values as JSON-like data: tuples read as lists; other objects are refused."""
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    if isinstance(value, tuple):
        return list(value)
    raise ExpressionError(f"expressions can only read JSON-like data, not {type(value).__name__}")


def _text(value: Any, function: str) -> str:
    if not isinstance(value, str):
        raise ExpressionError(f"{function}() needs a string, not {kind_of(value)}")
    return value


def _items(value: Any, function: str) -> list[Any]:
    if isinstance(value, dict):
        return list(value)
    if not isinstance(value, (list, str)):
        raise ExpressionError(f"{function}() needs a list, not {kind_of(value)}")
    return list(value)


def call_function(name: str, args: list[Any]) -> Any:
    arity = {"len": 1, "lower": 1, "upper": 1, "startswith": 2, "endswith": 2, "contains": 2,
             "matches": 2, "int": 1, "float": 1, "str": 1, "keys": 1, "values": 1, "any": 1,
             "all": 1, "sum": 1}  # fmt: skip
    expected = arity.get(name)
    if expected is not None and len(args) != expected:
        raise ExpressionError(f"{name}() takes {expected} argument{'s' if expected > 1 else ''}")
    if name == "len":
        if not isinstance(args[0], (str, list, dict)):
            raise ExpressionError(f"len() needs a string, list or object, not {kind_of(args[0])}")
        return len(args[0])
    if name in ("lower", "upper"):
        text = _text(args[0], name)
        return text.lower() if name == "lower" else text.upper()
    if name in ("startswith", "endswith"):
        text, part = _text(args[0], name), _text(args[1], name)
        return text.startswith(part) if name == "startswith" else text.endswith(part)
    if name == "contains":
        haystack, needle = args
        if isinstance(haystack, str):
            return _text(needle, name) in haystack
        return needle in _items(haystack, name)
    if name == "matches":
        text, pattern = _text(args[0], name), _text(args[1], name)
        if len(pattern) > MAX_PATTERN:
            raise ExpressionError(f"matches() patterns are limited to {MAX_PATTERN} characters")
        from afctl.safety.regex import RegexError, search

        try:
            return search(pattern, text)
        except RegexError as exc:
            raise ExpressionError(f"matches(): invalid pattern: {exc}") from None
    if name == "int":
        value = args[0]
        if isinstance(value, str) and len(value) > 100:
            raise ExpressionError("int() of a string longer than 100 characters")
        return int_checked(int(value))
    if name == "float":
        return float(args[0])
    if name == "str":
        value = args[0]
        text = value if isinstance(value, str) else json.dumps(value) if isinstance(
            value, (list, dict)) else "null" if value is None else str(value).lower() if isinstance(
            value, bool) else str(value)  # fmt: skip
        check_size(len(text))
        return text
    if name == "round":
        if not 1 <= len(args) <= 2 or not all(is_number(a) for a in args):
            raise ExpressionError("round() takes a number and optional digits")
        if len(args) == 2 and (not isinstance(args[1], int) or abs(args[1]) > 100):
            raise ExpressionError("round() digits must be an integer between -100 and 100")
        return round(*args)
    if name in ("min", "max"):
        values = _items(args[0], name) if len(args) == 1 else args
        if not values:
            raise ExpressionError(f"{name}() of nothing")
        return min(values) if name == "min" else max(values)
    if name == "sum":
        values = _items(args[0], name)
        if not all(is_number(v) for v in values):
            raise ExpressionError("sum() needs a list of numbers")
        return int_checked(sum(values))
    if name in ("any", "all"):
        values = _items(args[0], name)
        return any(values) if name == "any" else all(values)
    if name in ("keys", "values"):
        if not isinstance(args[0], dict):
            raise ExpressionError(f"{name}() needs an object, not {kind_of(args[0])}")
        return list(args[0].keys() if name == "keys" else args[0].values())
    raise ExpressionError(f'unknown function "{name}"')

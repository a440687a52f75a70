"""Label selectors, as in kubectl: `team=cx,tier!=3,beta,!legacy`."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from afctl.errors import UsageError

_TERM = re.compile(r"\s*(!?)\s*([A-Za-z0-9][-A-Za-z0-9_./]*)\s*(?:(==|=|!=)\s*([^,]*?))?\s*")

Selector = Callable[[Mapping[str, str]], bool]


def _test(key: str, operator: str | None, value: str | None, negated: bool) -> Selector:
    if operator in ("=", "=="):
        return lambda labels: labels.get(key) == value
    if operator == "!=":
        return lambda labels: labels.get(key) != value
    if negated:
        return lambda labels: key not in labels
    return lambda labels: key in labels


def parse_selector(text: str) -> Selector:
    """A predicate over labels. Terms are joined by commas and must all hold.

    Raises:
        UsageError: a term is not `key`, `!key`, `key=value` or `key!=value`.
    """
    tests: list[Selector] = []
    for term in text.split(","):
        match = _TERM.fullmatch(term)
        if match is None or not term.strip() or (match.group(1) and match.group(3)):
            raise UsageError(
                f"-l {text}: cannot read {term.strip()!r}",
                hint="write key=value, key!=value, key or !key, joined by commas",
            )
        negated, key, operator, value = match.groups()
        tests.append(_test(key, operator, value, bool(negated)))
    return lambda labels: all(test(labels) for test in tests)

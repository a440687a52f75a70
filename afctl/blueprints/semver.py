"""Semantic versions and the ranges `requires` and `install NAME@RANGE` use: `1.2.3`,
`^1.2` (same major), `~1.2` (same minor), `>=1.0 <2.0` (all must hold), `1.x`, `*`."""

from __future__ import annotations

import re
from functools import total_ordering

from afctl.errors import UsageError

_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$")
_PARTIAL = re.compile(r"^(\d+|[xX*])(?:\.(\d+|[xX*]))?(?:\.(\d+|[xX*]))?$")


@total_ordering
class Version:
    def __init__(self, text: str) -> None:
        match = _VERSION.match(text.strip())
        if match is None:
            raise UsageError(f"{text!r} is not a semantic version (like 1.2.0)")
        self.text = text.strip()
        self.release = (int(match[1]), int(match[2]), int(match[3]))
        self.pre = (
            tuple(int(p) if p.isdigit() else p for p in match[4].split(".")) if match[4] else ()
        )

    def _key(self) -> tuple[tuple[int, int, int], int, tuple[tuple[int, object], ...]]:
        # a pre-release sorts before its release; numeric parts before text parts
        parts = tuple((0, p) if isinstance(p, int) else (1, p) for p in self.pre)
        return self.release, 0 if self.pre else 1, parts

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return self.text


def _bounds(term: str) -> list[tuple[str, Version]]:
    """One range term as (operator, version) conditions."""
    for op in (">=", "<=", ">", "<", "="):
        if term.startswith(op):
            return [(op, Version(_full(term[len(op) :])))]
    if term[:1] in ("^", "~"):
        base = _full(term[1:])
        major, minor, patch = Version(base).release
        if term[0] == "^":
            upper = (f"{major + 1}.0.0" if major else
                     f"0.{minor + 1}.0" if minor else f"0.0.{patch + 1}")  # fmt: skip
        else:
            upper = f"{major}.{minor + 1}.0"
        return [(">=", Version(base)), ("<", Version(upper))]
    match = _PARTIAL.match(term)
    if match is None:
        raise UsageError(f"{term!r} is not a version range (like ^1.2, ~1.2.0, >=1.0 <2.0, 1.x)")
    parts = [p for p in match.groups() if p is not None]
    fixed = []
    for part in parts:
        if part in ("x", "X", "*"):
            break
        fixed.append(int(part))
    if not fixed:
        return []
    if len(fixed) == 3:
        return [("=", Version(".".join(map(str, fixed))))]
    low = fixed + [0] * (3 - len(fixed))
    high = fixed[:-1] + [fixed[-1] + 1] + [0] * (3 - len(fixed))
    return [(">=", Version(".".join(map(str, low)))), ("<", Version(".".join(map(str, high))))]


def _full(text: str) -> str:
    parts = text.strip().split(".")
    if len(parts) < 3 and all(p.isdigit() for p in parts):
        parts += ["0"] * (3 - len(parts))
    return ".".join(parts)


def satisfies(version: Version, spec: str) -> bool:
    """Whether `version` is in the range `spec` (pre-releases only when the range names one).

    Raises:
        UsageError: the range cannot be read.
    """
    conditions = [c for term in spec.split() for c in _bounds(term)]
    if version.pre and not any(v.pre for _, v in conditions):
        return False
    checks = {">=": lambda a, b: a >= b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
              "<": lambda a, b: a < b, "=": lambda a, b: a == b}  # fmt: skip
    return all(checks[op](version, bound) for op, bound in conditions)


def best(versions: list[str], spec: str) -> str | None:
    """The highest of `versions` in the range, or None."""
    matching = [Version(v) for v in versions if satisfies(Version(v), spec)]
    return max(matching).text if matching else None

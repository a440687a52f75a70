"""Diagnostics: one problem found in the user's input, with where it is and how to fix it.

Modelled on Terraform's diagnostics: collected in one pass, sorted, and rendered either as text
with a source snippet or as JSON. Lines and columns are 1-based and absolute within the file,
also in multi-document files.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=False)
class Diagnostic:
    """One problem in the user's input."""

    severity: Severity
    code: str
    """Stable identifier such as `schema.unknown-field`; documented in the README."""
    summary: str
    """One sentence saying what is wrong."""
    file: str | None = None
    line: int | None = None
    """1-based line, absolute within the file."""
    col: int | None = None
    """1-based column."""
    pointer: str | None = None
    """JSON pointer to the offending value within its document."""
    document: int | None = None
    """0-based index of the document within a multi-document file."""
    hint: str | None = None
    """What to do about it, when there is something useful to say."""
    detail: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.file or "", self.line or 0, self.col or 0, self.code, self.summary)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["severity"] = self.severity.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Diagnostic:
        values = dict(data)
        values["severity"] = Severity(values["severity"])
        return cls(**values)


def error(code: str, summary: str, **where: Any) -> Diagnostic:
    return Diagnostic(Severity.ERROR, code, summary, **where)


def warning(code: str, summary: str, **where: Any) -> Diagnostic:
    return Diagnostic(Severity.WARNING, code, summary, **where)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """A "did you mean" hint naming the closest candidate, or None when nothing is close."""
    import difflib

    options = list(candidates)
    matches = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if not matches:
        lowered = {c.lower(): c for c in options}
        if word.lower() in lowered:
            matches = [lowered[word.lower()]]
    return f'did you mean "{matches[0]}"?' if matches else None


def type_name(value: Any) -> str:
    """How a user would call the YAML value they wrote."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__

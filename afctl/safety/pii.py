"""Finding personal data in text: email addresses, phone numbers, payment card numbers (Luhn
checked) and IBANs (mod-97 checked). Used by the `pii` guardrail to block or mask them.

Candidates are found with simple, linear-time patterns, then confirmed by their checksum where
one exists, so order numbers and timestamps are not taken for cards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

KINDS = ("email", "phone", "card", "iban")

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d(?:[ .-]?\d){6,13}(?!\w)"
)
_DATE_LIKE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,4}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


@dataclass(frozen=True)
class Found:
    kind: str
    start: int
    end: int

    def placeholder(self) -> str:
        return f"[{self.kind.upper()}]"


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    compact = text.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in moved)
    return int(number) % 97 == 1


def _phone(candidate: str) -> bool:
    """Looks like a phone number, not an order number or a date: 7 to 15 digits, written
    with a country code, parentheses or at least two separators."""
    if not 7 <= sum(c.isdigit() for c in candidate) <= 15 or _DATE_LIKE.fullmatch(candidate):
        return False
    return (
        candidate.startswith("+") or "(" in candidate or len(re.findall(r"[ .-]", candidate)) >= 2
    )


def find(text: str, kinds: Iterable[str] = KINDS) -> list[Found]:
    """Every piece of personal data of `kinds` in `text`, left to right, not overlapping."""
    wanted = set(kinds)
    found: list[Found] = []
    if "email" in wanted:
        found += [Found("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
    if "iban" in wanted:
        for m in _IBAN.finditer(text):
            candidate = m[0]
            while not iban_ok(candidate) and " " in candidate:  # words may follow it
                candidate = candidate.rsplit(" ", 1)[0]
            if iban_ok(candidate):
                found.append(Found("iban", m.start(), m.start() + len(candidate)))
    if "card" in wanted:
        found += [
            Found("card", m.start(), m.end())
            for m in _CARD.finditer(text)
            if luhn_ok(re.sub(r"\D", "", m[0]))
        ]
    if "phone" in wanted:
        found += [Found("phone", m.start(), m.end()) for m in _PHONE.finditer(text) if _phone(m[0])]
    found.sort(key=lambda f: (f.start, -(f.end - f.start)))
    kept: list[Found] = []
    for item in found:  # the first (and longest) claim on a span wins: a card is not a phone
        if not kept or item.start >= kept[-1].end:
            kept.append(item)
    return kept


def mask(text: str, found: list[Found]) -> str:
    """`text` with each finding replaced by a placeholder such as `[EMAIL]`."""
    parts: list[str] = []
    position = 0
    for item in found:
        parts.append(text[position : item.start])
        parts.append(item.placeholder())
        position = item.end
    parts.append(text[position:])
    return "".join(parts)

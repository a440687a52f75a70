"""Regular expressions written by users (guardrails, `matches()`, eval assertions, scripted
models, `--filter`), matched by RE2: time linear in the text, whatever the pattern, so
`^(a+)+$` on `aaaa…!` answers at once instead of running for hours. RE2 has no
backreferences or lookaround; a pattern that uses them is refused when it is validated.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

MAX_PATTERN = 2000
"""The longest pattern accepted (the schemas say the same)."""
MAX_PROGRAM_BYTES = 8 * 1024 * 1024
"""The most memory one compiled pattern may take (`a{1000}{1000}` is refused)."""


class RegexError(ValueError):
    """A pattern RE2 cannot compile: invalid, too big, or using what it does not offer."""


@lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """`pattern` compiled by RE2 (cached per process).

    Raises:
        RegexError: it is too long, invalid, or needs backreferences or lookaround.
    """
    import re2

    if len(pattern) > MAX_PATTERN:
        raise RegexError(f"patterns are limited to {MAX_PATTERN} characters")
    options = re2.Options()
    options.log_errors = False
    options.max_mem = MAX_PROGRAM_BYTES
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        if "pattern too large" in text:
            text = "the pattern is too large"
        elif "invalid perl operator" in text or "invalid escape sequence: \\" in text:
            text += " (afctl matches with RE2: no backreferences or lookaround)"
        raise RegexError(text) from None


def search(pattern: str, text: str) -> bool:
    """Whether `pattern` matches anywhere in `text`.

    Raises:
        RegexError: the pattern cannot be compiled.
    """
    return compile_pattern(pattern).search(text) is not None


def check(pattern: str) -> str | None:
    """Why `pattern` cannot be used, or None."""
    try:
        compile_pattern(pattern)
    except RegexError as exc:
        return str(exc)
    return None

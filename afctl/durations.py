"""Durations as people write them on the command line: `30s`, `5m`, `12h`, `7d`, `2w`
(a bare number is seconds; seconds may have a fraction: `1.5s`)."""

from __future__ import annotations

import re

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds_of(text: str) -> float | None:
    """The duration in seconds, or None when `text` is not one."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return None
    return float(match[1]) * _UNITS[match[2]]

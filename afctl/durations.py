"""Durations as people write them on the command line: `30s`, `5m`, `12h`, `7d`, `2w`
(a bare number is seconds; seconds may have a fraction: `1.5s`)."""

from __future__ import annotations

import datetime
import re

from afctl.errors import UsageError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def seconds_of(text: str) -> float | None:
    """The duration in seconds, or None when `text` is not one."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        return None
    return float(match[1]) * _UNITS[match[2]]


def since_timestamp(text: str, now: datetime.datetime | None = None) -> str:
    """`7d`, `12h`, `30m` ago (or an ISO date) as the log's timestamp text.

    Raises:
        UsageError: it is neither.
    """
    seconds = seconds_of(text) if text.strip()[-1:].isalpha() else None
    if seconds is not None:
        try:
            moment = (now or datetime.datetime.now(datetime.UTC)) - datetime.timedelta(
                seconds=seconds
            )
        except OverflowError:  # before year 1: everything is newer
            return "0001-01-01T00:00:00.000Z"
        # the year padded by hand: strftime's %Y gives "931" for 931 (and the log's times
        # are compared as text)
        return f"{moment.year:04d}-" + moment.strftime("%m-%dT%H:%M:%S.000Z")
    try:
        return datetime.date.fromisoformat(text.strip()).isoformat()
    except ValueError:
        raise UsageError(
            f"--since {text}: write a duration (30m, 12h, 7d, 2w) or a date (2026-11-01)"
        ) from None

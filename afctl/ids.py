"""Identifiers: ULIDs (time-ordered, 26 characters of Crockford base32) and timestamps."""

from __future__ import annotations

import datetime
import os
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_ulid(at_ms: int | None = None) -> str:
    """A ULID: 48 bits of milliseconds since the epoch, then 80 random bits."""
    millis = int(time.time() * 1000) if at_ms is None else at_ms
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def derived_ulid(base: str, *parts: object) -> str:
    """A ULID named by `base` (a ULID) and `parts`: the same each time, in `base`'s millisecond
    (its first 10 characters), so a workflow's step runs keep their ids when it resumes."""
    import hashlib

    text = "\x1f".join([base, *map(str, parts)])
    value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:10], "big")
    chars = []
    for _ in range(16):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return base[:10] + "".join(reversed(chars))


def utc_now() -> str:
    """The current time as ISO 8601 in UTC with milliseconds (sortable as text)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def actor() -> str:
    """Who is acting: `AFCTL_ACTOR`, else user@host."""
    override = os.environ.get("AFCTL_ACTOR")
    if override:
        return override
    import getpass
    import socket

    try:
        user = getpass.getuser()
    except Exception:  # no user name in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return f"{user}@{socket.gethostname()}"

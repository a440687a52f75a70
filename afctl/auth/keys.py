"""API keys: `afk_` + 40 random characters, shown once; only their SHA-256 is stored.

Keys are random (240 bits), so a plain SHA-256 is enough to store them: there is nothing to
guess, and a lookup by hash is as fast as the server needs. The visible `afk_` prefix lets
secret scanners, and afctl's own redaction, recognise a key anywhere it leaks.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

PREFIX = "afk_"
ROLES = ("viewer", "runner", "operator", "admin")
"""Each role can do what the ones before it can, and more (see the server's routes)."""


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(30)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A key as stored: everything but the key itself."""

    id: str
    name: str | None
    prefix: str
    """The key's first characters, to recognise it in a list (`afk_Ab3d...`)."""
    role: str
    env: str
    created_at: str
    created_by: str | None
    expires_at: str | None
    revoked_at: str | None

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> ApiKey:
        return cls(**{k: v for k, v in row.items() if k != "hash"})

    def state(self, now: str) -> str:
        """active, expired or revoked (at `now`, ISO text)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class AuditRecord:
    """A change a caller of the server made or tried: `who` (a key's name or id, a token's
    subject), in which `role` and `env`, the `action` (`runs.start`, `resources.apply`) on
    which `target`, its `result` (ok, denied, failed) with the HTTP `status`, and the
    request's id (also in the response's `X-Request-Id`)."""

    id: str
    at: str
    who: str
    role: str
    env: str
    action: str
    target: str
    result: str
    status: int
    request_id: str

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))

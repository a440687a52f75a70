"""API keys of a workspace, stored in its state.db: create (the key is returned once),
list, revoke, and check a key a request presents."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import TYPE_CHECKING

from afctl.auth.keys import PREFIX, ROLES, ApiKey, AuditRecord, key_hash, new_key
from afctl.errors import UsageError
from afctl.ids import new_ulid, utc_now
from afctl.state.service import StateService
from afctl.workspace import Workspace

if TYPE_CHECKING:
    from afctl.state.store import StateStore


class AuthService:
    def __init__(self, workspace: Workspace, state: StateService) -> None:
        self.workspace = workspace
        self.state = state

    def _store(self) -> StateStore:
        store = self.state.store(create=True)
        assert store is not None
        return store

    def create_key(
        self,
        role: str,
        *,
        name: str | None = None,
        expires_in_s: float | None = None,
        created_by: str | None = None,
    ) -> tuple[ApiKey, str]:
        """A new key for `role` in this context's environment; returns it with the key
        itself, which is stored nowhere (only its hash is).

        Raises:
            UsageError: an unknown role, or an expiry that is not in the future.
        """
        if role not in ROLES:
            raise UsageError(f"unknown role {role!r}", hint="roles: " + ", ".join(ROLES))
        if expires_in_s is not None and expires_in_s <= 0:
            raise UsageError("--expires must be in the future", hint="--expires 30d")
        key = new_key()
        now = datetime.datetime.now(datetime.UTC)
        expires = (None if expires_in_s is None else
                   (now + datetime.timedelta(seconds=expires_in_s))
                   .strftime("%Y-%m-%dT%H:%M:%S.000Z"))  # fmt: skip
        row = {"id": new_ulid(), "name": name, "prefix": key[: len(PREFIX) + 6],
               "hash": key_hash(key), "role": role, "env": self.workspace.env,
               "created_at": utc_now(),
               "created_by": created_by, "expires_at": expires, "revoked_at": None}  # fmt: skip
        store = self._store()
        with store.transaction():
            store.sql.insert("api_keys", [row])
        return ApiKey.from_row(row), key

    def keys(self) -> list[ApiKey]:
        """Every key of the workspace (revoked and expired ones too), oldest first."""
        store = self.state.store()
        if store is None:
            return []
        rows = store.sql.query("SELECT * FROM api_keys ORDER BY created_at, id")
        return [ApiKey.from_row(row) for row in rows]

    def revoke_key(self, reference: str) -> ApiKey:
        """Revoke a key (by id, unique id prefix, or name) from now on.

        Raises:
            UsageError: no key, or several, match.
        """
        matches = [k for k in self.keys() if k.id.startswith(reference) or k.name == reference]
        if len(matches) != 1:
            what = "no key" if not matches else "more than one key"
            raise UsageError(f"{what} matches {reference!r}", hint="afctl auth keys list")
        key = matches[0]
        store = self._store()
        with store.transaction():
            store.sql.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND "
                              "revoked_at IS NULL", [utc_now(), key.id])  # fmt: skip
        return ApiKey.from_row(store.sql.query("SELECT * FROM api_keys WHERE id = ?", [key.id])[0])

    def check_key(self, presented: str) -> ApiKey | None:
        """The key `presented` is, when it is active (not revoked, not expired); else None."""
        if not presented.startswith(PREFIX):
            return None
        store = self.state.store()
        if store is None:
            return None
        rows = store.sql.query("SELECT * FROM api_keys WHERE hash = ?", [key_hash(presented)])
        if not rows:
            return None
        key = ApiKey.from_row(rows[0])
        return key if key.state(utc_now()) == "active" else None

    def audit(self, records: Sequence[AuditRecord]) -> None:
        """Keep the records of changes callers of the server made (or tried to), in one
        transaction."""
        if not records:
            return
        store = self._store()
        with store.transaction():
            store.sql.insert("audit", [r.to_dict() for r in records])

    def audit_records(self, *, limit: int = 100, env: str | None = None) -> list[AuditRecord]:
        """The latest `limit` audit records (of one environment when `env`), oldest first."""
        store = self.state.store()
        if store is None:
            return []
        where, params = ("WHERE env = ?", [env]) if env else ("", [])
        rows = store.sql.query(f"SELECT * FROM audit {where} ORDER BY at DESC, id DESC LIMIT ?",
                               [*params, limit])  # fmt: skip
        return [AuditRecord(**row) for row in reversed(rows)]

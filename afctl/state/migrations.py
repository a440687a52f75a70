"""Numbered, append-only migrations of the state (`state.db`, or the state's PostgreSQL
database). Never edit a shipped migration: add one. See `afctl.storage.schema` for how one
history serves both backends."""

from __future__ import annotations

from typing import Any

from afctl.storage.schema import MigrationSet

state_migrations = MigrationSet("afctl-state")
migration = state_migrations


@migration("0001_initial")
def _initial(db: Any) -> None:
    db["meta"].create({"key": str, "value": str}, pk="key")
    db["environments"].create(
        {"name": str, "serial": int, "created_at": str, "updated_at": str}, pk="name"
    )
    db["resources"].create(
        {
            "env": str,
            "kind": str,
            "name": str,
            "revision": int,
            "hash": str,
            "document": str,
            "labels": str,
            "source_file": str,
            "source_set": str,
            "protect": int,
            "applied_at": str,
            "applied_by": str,
            "apply_id": str,
        },
        pk=("env", "kind", "name"),
        not_null={"revision", "hash", "document", "protect"},
    )
    db["revisions"].create(
        {
            "env": str,
            "kind": str,
            "name": str,
            "revision": int,
            "action": str,
            "hash": str,
            "document": str,
            "source_file": str,
            "source_set": str,
            "applied_at": str,
            "applied_by": str,
            "apply_id": str,
        },
        pk=("env", "kind", "name", "revision"),
    )
    db["applies"].create(
        {
            "id": str,
            "env": str,
            "plan_id": str,
            "serial_before": int,
            "serial_after": int,
            "started_at": str,
            "finished_at": str,
            "actor": str,
            "command": str,
            "source_set": str,
            "creates": int,
            "updates": int,
            "deletes": int,
            "summary": str,
        },
        pk="id",
    )
    db["applies"].create_index(["env", "finished_at"])
    db["locks"].create(
        {
            "scope": str,
            "lock_id": str,
            "pid": int,
            "host": str,
            "actor": str,
            "command": str,
            "acquired_at": str,
        },
        pk="scope",
    )


@migration("0002_api_keys")
def _api_keys(db: Any) -> None:
    """API keys of the server: a hash of each key (never the key), its role and environment."""
    db["api_keys"].create(
        {
            "id": str,
            "name": str,
            "prefix": str,
            "hash": str,
            "role": str,
            "env": str,
            "created_at": str,
            "created_by": str,
            "expires_at": str,
            "revoked_at": str,
        },
        pk="id",
    )
    db["api_keys"].create_index(["hash"], unique=True)


@migration("0003_audit")
def _audit(db: Any) -> None:
    """What callers of the server changed: who, in which role and environment, what, on what,
    how it ended, and the request's id."""
    db["audit"].create(
        {
            "id": str,
            "at": str,
            "who": str,
            "role": str,
            "env": str,
            "action": str,
            "target": str,
            "result": str,
            "status": int,
            "request_id": str,
        },
        pk="id",
    )
    db["audit"].create_index(["at"])

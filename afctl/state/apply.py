"""Applying a plan: the only code that writes applied state.

Everything happens in one write transaction under the workspace lock: the state
serial is checked against the plan's (a stale plan is refused), every change and its revision
are written, the apply is recorded, the serial moves on and the lock is released, all in the
same commit. A crash at any point leaves either the old state or the new one.
"""

from __future__ import annotations

import json
from typing import Any

from afctl.errors import StateConflict
from afctl.ids import actor, new_ulid, utc_now
from afctl.state.plan import Plan, is_protected
from afctl.state.store import LOCK_SCOPE, RESOURCE_COLUMNS, ApplyRecord, LockInfo, StateStore


def check_plan_applies(store: StateStore, plan: Plan) -> None:
    """Refuse a plan made for another workspace or environment, or against older state.

    Raises:
        StateConflict: the plan does not fit the state as it is now.
    """
    if plan.workspace_id is not None and plan.workspace_id != store.workspace_id:
        raise StateConflict(
            "the plan was made for another workspace",
            hint="make the plan in this workspace: afctl plan -f . --out plan.json",
        )
    serial = store.serial(plan.env)
    if serial != plan.state_serial:
        raise StateConflict(
            f"the plan is stale: it was made at state serial {plan.state_serial} of environment "
            f"{plan.env}, which is now at serial {serial}",
            hint="the state changed since the plan was made; run afctl plan again",
        )


_REVISION_COLUMNS = (
    "env", "kind", "name", "revision", "action", "hash", "document", "source_file", "source_set",
    "applied_at", "applied_by", "apply_id",
)  # fmt: skip


def _insert_many(
    store: StateStore,
    table: str,
    columns: tuple[str, ...],
    rows: list[tuple[Any, ...]],
    *,
    replace: bool = False,
) -> None:
    """Bulk insert of plain columns; `replace`: over the row with the same (env, kind,
    name)."""
    marks = ", ".join("?" * len(columns))
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
    if replace:
        keys = ("env", "kind", "name")
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c not in keys)
        statement += f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    store.sql.executemany(statement, rows)


def apply_plan(store: StateStore, plan: Plan, lock: LockInfo, command: str) -> ApplyRecord:
    """Write `plan` to the state. The caller holds `lock`; a successful apply releases it.

    Raises:
        StateConflict: the plan is stale or for another workspace, or the lock was lost.
    """
    # one transaction, written out whole: every statement of an apply reads in order here
    started = utc_now()
    apply_id = new_ulid()
    who = actor()
    with store.transaction():
        store.check_lock(lock)
        check_plan_applies(store, plan)
        env = plan.env
        stamp = (started, who, apply_id)
        latest = dict(
            store.sql.execute(
                "SELECT kind || '/' || name, MAX(revision) FROM revisions WHERE env = ? "
                "GROUP BY kind, name",
                [env],
            ).fetchall()
        )
        upserts: list[tuple[Any, ...]] = []
        revisions: list[tuple[Any, ...]] = []
        deletes = []
        for change in plan.changes:
            revision = latest.get(f"{change.kind}/{change.name}", 0) + 1
            document = change.document
            text = None if document is None else json.dumps(document)
            action = change.action
            if (change.reason or "").startswith("rollback"):
                action = "rollback"
            digest = change.after_hash or change.before_hash
            revisions.append(
                (env, change.kind, change.name, revision, action, digest, text,
                 change.source_file, change.owner, *stamp)
            )  # fmt: skip
            if document is None:
                deletes.append((env, change.kind, change.name))
                continue
            labels = (document.get("metadata") or {}).get("labels") or {}
            upserts.append(
                (env, change.kind, change.name, revision, change.after_hash, text,
                 json.dumps(labels, sort_keys=True), change.source_file, change.owner,
                 int(is_protected(document)), *stamp)
            )  # fmt: skip
        _insert_many(store, "resources", RESOURCE_COLUMNS, upserts, replace=True)
        _insert_many(store, "revisions", _REVISION_COLUMNS, revisions)
        if deletes:
            store.sql.executemany(
                "DELETE FROM resources WHERE env = ? AND kind = ? AND name = ?", deletes
            )
        serial_after = plan.state_serial + (1 if plan.changes else 0)
        finished = utc_now()
        if plan.changes:
            store.sql.execute(
                "INSERT INTO environments (name, serial, created_at, updated_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET serial = excluded.serial, "
                "updated_at = excluded.updated_at",
                [env, serial_after, finished, finished],
            )
        record = ApplyRecord(
            id=apply_id,
            env=env,
            plan_id=plan.plan_id,
            serial_before=plan.state_serial,
            serial_after=serial_after,
            started_at=started,
            finished_at=finished,
            actor=who,
            command=command,
            source_set=plan.source_set,
            creates=plan.count("create"),
            updates=plan.count("update"),
            deletes=plan.count("delete"),
        )
        store.sql.insert(
            "applies",
            [{**vars(record), "summary": json.dumps([[c.action, c.ref] for c in plan.changes])}],
        )
        store.sql.execute(
            "DELETE FROM locks WHERE scope = ? AND lock_id = ?", [LOCK_SCOPE, lock.lock_id]
        )
    return record

"""API keys: shown once, stored only as a hash, checked, revoked at once, expiring, and
recognised by afctl's redaction wherever they leak."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.safety.secrets import REDACTED, redact_known
from afctl.testing import invoke

pytestmark = pytest.mark.usefixtures("backend")  # every test on SQLite and PostgreSQL


def state_bytes(workspace: Path) -> bytes:
    return b"".join(p.read_bytes() for p in (workspace / ".afctl").glob("state.db*"))


def test_a_key_is_shown_once_and_only_its_hash_is_kept(tmp_path: Path) -> None:
    created = invoke(["auth", "keys", "create", "--role", "runner", "--name", "ci",
                      "--env", "prod"], cwd=tmp_path)  # fmt: skip
    assert created.exit_code == 0, created.output
    key = created.stdout.strip()
    assert key.startswith("afk_") and len(key) > 40
    assert "shown once" in created.stderr
    with Context(workspace=tmp_path, env="prod") as context:
        services = context.services
        checked = services.auth.check_key(key)
        assert checked is not None and (checked.role, checked.env, checked.name) == (
            "runner", "prod", "ci")  # fmt: skip
        assert services.auth.check_key(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
        assert services.auth.check_key("sk-not-ours") is None
    assert key.encode() not in state_bytes(tmp_path)
    listed = invoke(["auth", "keys", "list", "--env", "prod"], cwd=tmp_path)
    assert "ci" in listed.stdout and "active" in listed.stdout and key not in listed.output


def test_a_revoked_key_stops_working_at_once(tmp_path: Path) -> None:
    with Context(workspace=tmp_path) as context:
        record, key = context.api_key_create("admin", name="ops")
        assert context.services.auth.check_key(key) is not None
        assert invoke(["auth", "keys", "revoke", "ops"], cwd=tmp_path).exit_code == 0
        assert context.services.auth.check_key(key) is None
        states = json.loads(invoke(["auth", "keys", "list", "-o", "json"], cwd=tmp_path).stdout)
        assert [(k["id"], k["state"]) for k in states] == [(record.id, "revoked")]


def test_an_expired_key_is_refused(tmp_path: Path) -> None:
    with Context(workspace=tmp_path) as context:
        _, key = context.api_key_create("viewer", expires_in_s=0.05)
        time.sleep(0.1)
        assert context.services.auth.check_key(key) is None
        assert [k.state(k.expires_at or "") for k in context.api_keys()] == ["expired"]


def test_mistakes_are_usage_errors(tmp_path: Path) -> None:
    bad_role = invoke(["auth", "keys", "create", "--role", "root"], cwd=tmp_path)
    assert bad_role.exit_code == 64 and "root" in bad_role.stderr
    nothing = invoke(["auth", "keys", "revoke", "nope"], cwd=tmp_path)
    assert nothing.exit_code == 64 and "no key matches 'nope'" in nothing.stderr


def test_a_key_is_redacted_wherever_it_leaks_but_shown_when_created(tmp_path: Path) -> None:
    created = invoke(["auth", "keys", "create", "--role", "viewer", "-o", "json"], cwd=tmp_path)
    key = json.loads(created.stdout)["key"]
    assert key.startswith("afk_")
    assert redact_known(f"Authorization: Bearer {key}") == f"Authorization: Bearer {REDACTED}"

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from afctl.context import Context
from afctl.errors import StateConflict, UsageError
from afctl.state.plan import Plan, ProtectedResources
from afctl.testing import write_repo
from tests.postgres import stored_bytes

pytestmark = pytest.mark.usefixtures("backend")  # every test on SQLite and PostgreSQL


def agent(name: str, model: str = "local/echo", extra: str = "") -> str:
    return (
        "apiVersion: afctl/v1\nkind: Agent\n"
        f"metadata: {{name: {name}, labels: {{team: cx}}}}\n"
        f"spec:\n  model: {model}\n  instructions: Help with {name}.\n{extra}"
    )


def model(name: str, temperature: float = 0.2, protect: bool = False) -> str:
    lifecycle = ", lifecycle: {protect: true}" if protect else ""
    return (
        "apiVersion: afctl/v1\nkind: Model\n"
        f"metadata: {{name: {name}{lifecycle}}}\n"
        f"spec: {{provider: local, model: echo, params: {{temperature: {temperature}}}}}\n"
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return write_repo(
        tmp_path,
        {
            "agents/a.yaml": agent("alpha"),
            "agents/b.yaml": agent("beta", extra="  limits: {max_turns: 4}\n"),
            "models/m.yaml": model("fast"),
        },
    )


def ctx(repo: Path, env: str = "default") -> Context:
    return Context(workspace=repo, env=env)


def actions(plan: Plan) -> list[tuple[str, str]]:
    return [(c.action, c.ref) for c in plan.changes]


def test_first_plan_creates_everything_without_writing(repo):
    plan = ctx(repo).plan(str(repo))
    assert actions(plan) == [
        ("create", "model/fast"),
        ("create", "agent/alpha"),
        ("create", "agent/beta"),
    ]
    assert plan.summary == "Plan: 3 to create, 0 to update, 0 to delete."
    assert plan.state_serial == 0 and plan.source_set == "."
    assert not (repo / ".afctl" / "state.db").exists()


def test_apply_then_plan_is_empty(repo):
    outcome = ctx(repo).apply(str(repo))
    assert outcome.applied and outcome.record is not None
    assert (outcome.record.serial_before, outcome.record.serial_after) == (0, 1)
    again = ctx(repo).plan(str(repo))
    assert not again.has_changes and again.unchanged == 3 and again.state_serial == 1
    noop = ctx(repo).apply(str(repo))
    assert noop.record is None


def test_updates_carry_field_level_diffs_and_revisions(repo):
    ctx(repo).apply(str(repo))
    write_repo(repo, {"agents/b.yaml": agent("beta", extra="  limits: {max_turns: 6}\n")})
    plan = ctx(repo).plan(str(repo))
    (change,) = plan.changes
    assert (change.action, change.ref, change.before_revision) == ("update", "agent/beta", 1)
    assert [(f.op, f.path, f.before, f.after) for f in change.fields] == [
        ("replace", "/spec/limits/max_turns", 4, 6)
    ]
    ctx(repo).apply(str(repo))
    history = ctx(repo).history("agent", "beta")
    assert [(r.revision, r.action) for r in history] == [(1, "create"), (2, "update")]


def test_key_order_and_formatting_do_not_count_as_changes(repo):
    ctx(repo).apply(str(repo))
    write_repo(
        repo,
        {
            "models/m.yaml": "kind: Model\napiVersion: afctl/v1\n"
            "spec:\n  params:\n    temperature: 0.2\n  model: echo\n  provider: local\n"
            "metadata:\n  name: fast\n"
        },
    )
    assert not ctx(repo).plan(str(repo)).has_changes


def test_prune_deletes_only_what_the_same_source_set_applied(repo):
    ctx(repo).apply(str(repo))
    other = write_repo(repo / "elsewhere", {"x.yaml": model("other")})
    ctx(repo).apply(str(other))
    (repo / "agents/b.yaml").unlink()
    assert not any(c.action == "delete" for c in ctx(repo).plan(str(repo)).changes)
    plan = ctx(repo).plan([str(repo / "agents"), str(repo / "models")], prune=True)
    assert not any(c.action == "delete" for c in plan.changes)  # not the set that applied
    plan = ctx(repo).plan(str(repo), prune=True)
    deletes = [c.ref for c in plan.changes if c.action == "delete"]
    assert deletes == ["agent/beta"]  # model/other belongs to the `elsewhere` source set


def test_applying_from_other_files_moves_ownership_visibly(repo):
    ctx(repo).apply(str(repo))
    plan = ctx(repo).plan(str(repo / "agents"))
    assert [(c.action, c.ref, c.fields, c.previous_owner, c.owner) for c in plan.changes] == [
        ("update", "agent/alpha", (), ".", "agents"),
        ("update", "agent/beta", (), ".", "agents"),
    ]
    ctx(repo).apply(str(repo / "agents"))
    (repo / "agents/b.yaml").unlink()
    assert not any(c.action == "delete" for c in ctx(repo).plan(str(repo), prune=True).changes)
    assert ("delete", "agent/beta") in actions(ctx(repo).plan(str(repo / "agents"), prune=True))


def test_protected_resources_cannot_be_deleted_even_without_their_manifest(repo):
    write_repo(repo, {"models/m.yaml": model("fast", protect=True)})
    ctx(repo).apply(str(repo))
    assert ctx(repo).get("model", "fast")[0].protect
    (repo / "models/m.yaml").unlink()
    write_repo(repo, {"agents/a.yaml": agent("alpha", model="local/echo")})
    with pytest.raises(ProtectedResources) as caught:
        ctx(repo).plan(str(repo), prune=True)
    assert caught.value.exit_code == 3 and "model/fast" in caught.value.message
    with pytest.raises(ProtectedResources):
        ctx(repo).delete([("Model", "fast")])
    write_repo(repo, {"models/m.yaml": model("fast", protect=False)})
    ctx(repo).apply(str(repo))  # lifting the protection is an explicit update
    (repo / "models/m.yaml").unlink()
    plan = ctx(repo).apply(str(repo), prune=True).plan
    assert ("delete", "model/fast") in actions(plan)


def test_saved_plans_apply_exactly_or_are_refused_when_stale(repo, tmp_path):
    plan = ctx(repo).plan(str(repo))
    path = tmp_path / "plan.json"
    Context.save_plan(plan, path)
    data = json.loads(path.read_text())
    assert data["format_version"] == 1 and data["state_serial"] == 0
    assert data["changes"][0]["document"]["kind"] == "Model"
    loaded = Context.read_plan(path)
    assert loaded == plan
    write_repo(repo, {"agents/a.yaml": agent("alpha", model="openai/gpt-4.1-mini")})
    outcome = ctx(repo).apply_saved_plan(loaded)
    assert outcome.record is not None and outcome.record.plan_id == plan.plan_id
    alpha = ctx(repo).get("agent", "alpha")[0]
    assert alpha.document["spec"]["model"] == "local/echo"  # the plan's, not the file's
    with pytest.raises(StateConflict) as caught:
        ctx(repo).apply_saved_plan(loaded)
    assert "stale" in caught.value.message and caught.value.exit_code == 4
    assert ctx(repo).get("model", "fast")[0].revision == 1


def test_saved_plans_are_refused_in_another_environment_or_workspace(
    repo, tmp_path, backend, request, monkeypatch
):
    ctx(repo).apply(str(repo))
    plan = ctx(repo).plan(str(repo / "agents"), prune=True)
    with pytest.raises(StateConflict, match="environment default"):
        ctx(repo, env="prod").apply_saved_plan(plan)
    if backend == "postgresql":  # a workspace is its database
        postgres = request.getfixturevalue("postgres")
        url = postgres.database()
        request.addfinalizer(lambda: postgres.drop(url))
        monkeypatch.setenv("AFCTL_DATABASE_URL", url)
        Context(workspace=tmp_path).db_migrate()
    other = write_repo(tmp_path / "other", {"m.yaml": model("fast")})
    ctx(other).apply(str(other))
    with pytest.raises(StateConflict, match="another workspace"):
        ctx(other).apply_saved_plan(plan)


def test_damaged_plan_files_are_usage_errors(tmp_path):
    (tmp_path / "p.json").write_text('{"format_version": 1, "changes": [{}]}')
    with pytest.raises(UsageError, match="damaged"):
        Context.read_plan(tmp_path / "p.json")
    (tmp_path / "q.json").write_text("not json")
    with pytest.raises(UsageError, match="not a plan"):
        Context.read_plan(tmp_path / "q.json")


def test_environments_keep_separate_state(repo):
    ctx(repo, "prod").apply(str(repo / "models"))
    assert ctx(repo).get() == []
    assert [r.ref for r in ctx(repo, "prod").get()] == ["model/fast"]
    assert ctx(repo).plan(str(repo)).state_serial == 0
    with pytest.raises(UsageError):
        Context(workspace=repo, env="Prod!")


def test_declining_or_failing_confirmation_writes_nothing_and_unlocks(repo):
    from afctl.console import Console

    class Declining(Console):
        def confirm(self, plan, action, *, decided=False):  # type: ignore[no-untyped-def]
            return False

    class Interrupted(Console):
        def confirm(self, plan, action, *, decided=False):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt

    outcome = Context(workspace=repo, console=Declining()).apply(str(repo))
    assert outcome.record is None and ctx(repo).get() == []

    with pytest.raises(KeyboardInterrupt):
        Context(workspace=repo, console=Interrupted()).apply(str(repo))
    assert ctx(repo).get() == []
    assert ctx(repo).apply(str(repo), lock_timeout=0).applied  # the lock was released


def open_store(repo: Path):  # type: ignore[no-untyped-def]
    from afctl.state.store import StateStore
    from afctl.storage.settings import StorageSettings

    return StateStore.open(repo / ".afctl", settings=StorageSettings.from_env())


def test_a_held_lock_names_its_holder_and_force_unlock_clears_it(repo):
    ctx(repo).apply(str(repo / "models"))
    store = open_store(repo)  # another process, still applying
    try:
        held = store.acquire_lock("afctl apply -f . (another terminal)", timeout_s=0)
        with pytest.raises(StateConflict) as caught:
            ctx(repo).apply(str(repo), lock_timeout=0.3)
        assert held.lock_id in caught.value.message
        assert "another terminal" in caught.value.message and caught.value.exit_code == 4
        with pytest.raises(StateConflict, match="another id"):
            ctx(repo).force_unlock("01WRONG")
        assert ctx(repo).force_unlock(held.lock_id).lock_id == held.lock_id
        assert ctx(repo).apply(str(repo), lock_timeout=0).applied
    finally:
        store.close()


@pytest.mark.sqlite_only  # on PostgreSQL a lock ends with its holder's session
def test_a_lock_left_by_a_dead_process_suggests_force_unlock(repo):
    from afctl.state.store import LOCK_SCOPE, StateStore

    ctx(repo).apply(str(repo / "models"))
    with StateStore.open(repo / ".afctl") as store, store.transaction():
        store.conn.execute(
            "INSERT INTO locks VALUES (?, 'L1', 999999999, ?, 'x', 'afctl apply', 'now')",
            [LOCK_SCOPE, __import__("socket").gethostname()],
        )
    with pytest.raises(StateConflict) as caught:
        ctx(repo).apply(str(repo), lock_timeout=0)
    assert caught.value.hint is not None and "afctl force-unlock L1" in caught.value.hint


def test_delete_and_rollback_keep_history(repo):
    ctx(repo).apply(str(repo))
    write_repo(repo, {"models/m.yaml": model("fast", temperature=0.9)})
    ctx(repo).apply(str(repo))
    rolled = ctx(repo).rollback("model", "fast", 1)
    (change,) = rolled.plan.changes
    assert change.reason == "rollback to revision 1"
    fast = ctx(repo).get("model", "fast")[0]
    assert fast.revision == 3 and fast.document["spec"]["params"]["temperature"] == 0.2
    assert [r.action for r in ctx(repo).history("model", "fast")] == [
        "create",
        "update",
        "rollback",
    ]
    ctx(repo).delete([("Model", "fast")])
    assert ctx(repo).get("model") == []
    assert [r.action for r in ctx(repo).history("model", "fast")][-1] == "delete"
    ctx(repo).rollback("model", "fast", 2)  # brings a deleted resource back
    assert ctx(repo).get("model", "fast")[0].document["spec"]["params"]["temperature"] == 0.9
    with pytest.raises(UsageError, match="is a deletion"):
        ctx(repo).rollback("model", "fast", 4)
    with pytest.raises(UsageError, match="does not exist"):
        ctx(repo).rollback("model", "fast", 99)


def test_delete_by_files_and_unknown_names(repo):
    ctx(repo).apply(str(repo))
    ctx(repo).delete(paths=str(repo / "agents"))
    assert [r.ref for r in ctx(repo).get()] == ["model/fast"]
    with pytest.raises(UsageError, match="not applied"):
        ctx(repo).delete([("Agent", "alpha")])


def test_get_filters_by_kind_name_and_labels(repo):
    ctx(repo).apply(str(repo))
    assert [r.name for r in ctx(repo).get("agents")] == ["alpha", "beta"]
    assert [r.name for r in ctx(repo).get("agent", selector="team=cx")] == ["alpha", "beta"]
    assert ctx(repo).get("agent", selector="team!=cx") == []
    assert [r.ref for r in ctx(repo).get("all", selector="!team")] == ["model/fast"]
    with pytest.raises(UsageError):
        ctx(repo).get("agent", "nobody")
    with pytest.raises(UsageError):
        ctx(repo).get("agent", selector="team=cx,=x")


def test_secrets_stay_references_in_state_and_plans(repo, monkeypatch, tmp_path):
    monkeypatch.setenv("SUPER_SECRET_TOKEN", "s3cr3t-value-123")
    write_repo(
        repo,
        {
            "models/m.yaml": "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: fast}\n"
            "spec: {provider: openai, model: gpt-4.1-mini, "
            "headers: {Authorization: 'Bearer ${env:SUPER_SECRET_TOKEN}'}}\n"
        },
    )
    plan = ctx(repo).plan(str(repo))
    Context.save_plan(plan, tmp_path / "plan.json")
    ctx(repo).apply(str(repo))
    state = stored_bytes(repo / ".afctl")
    for blob in (state, (tmp_path / "plan.json").read_bytes()):
        assert b"s3cr3t-value-123" not in blob
        assert b"${env:SUPER_SECRET_TOKEN}" in blob


@pytest.mark.sqlite_only
def test_state_database_is_wal_migrated_and_sound(repo):
    ctx(repo).apply(str(repo))
    connection = sqlite3.connect(repo / ".afctl" / "state.db")
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    names = [r[0] for r in connection.execute("SELECT name FROM _sqlite_migrations")]
    assert names == ["0001_initial", "0002_api_keys", "0003_audit"]
    applies = connection.execute("SELECT env, creates, actor, command FROM applies").fetchall()
    assert applies == [("default", 3, applies[0][2], "afctl apply")]


@pytest.mark.sqlite_only  # PostgreSQL: tests/storage/test_postgres.py
def test_a_state_from_an_older_afctl_is_migrated_and_keeps_what_it_held(repo):
    ctx(repo).apply(str(repo))
    connection = sqlite3.connect(repo / ".afctl" / "state.db")
    with connection:  # as the first release left it: no api_keys or audit yet
        connection.execute("DROP TABLE api_keys")
        connection.execute("DROP TABLE audit")
        connection.execute("DELETE FROM _sqlite_migrations WHERE name != '0001_initial'")
    connection.close()
    assert len(ctx(repo).get()) == 3  # opened, migrated, nothing lost
    with Context(workspace=repo) as context:
        _, key = context.api_key_create("viewer")
        assert context.services.auth.check_key(key) is not None


@pytest.mark.sqlite_only  # PostgreSQL: tests/storage/test_postgres.py
def test_state_from_a_newer_afctl_is_refused(repo):
    ctx(repo).apply(str(repo / "models"))
    connection = sqlite3.connect(repo / ".afctl" / "state.db")
    with connection:
        connection.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('afctl-state', '0099_future', 'later')"
        )
    connection.close()
    with pytest.raises(StateConflict, match="newer afctl"):
        ctx(repo).get()

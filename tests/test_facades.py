"""The two façades, `afctl.AsyncContext` and `afctl.Context`: one API over the same services,
which own their connections for the life of the context."""

from __future__ import annotations

import asyncio
import inspect
import sqlite3

import afctl
from afctl.context import AsyncContext, Context
from afctl.testing import invoke, write_repo

AGENT = "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: local/echo}\n"
SUITE = (
    "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\n"
    "spec: {target: {agent: a}, cases: [{input: hi, assert: [{type: contains, value: hi}]}]}\n"
)


def public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def test_both_facades_offer_the_same_methods():
    shared = public(Context) & public(AsyncContext)
    assert public(Context) - shared == {"close"}
    assert public(AsyncContext) - shared == {"aclose"}
    properties = {"workspace", "env", "root", "services", "console", "read_plan", "save_plan"}
    for name in shared - properties:
        assert inspect.iscoroutinefunction(getattr(AsyncContext, name)), name
        assert not inspect.iscoroutinefunction(getattr(Context, name)), name
        # the documentation of each is the service method's
        assert getattr(Context, name).__doc__ == getattr(AsyncContext, name).__doc__, name
        assert getattr(Context, name).__doc__, name
    assert "AsyncContext" in afctl.__all__ and afctl.AsyncContext is AsyncContext


def test_async_context_applies_runs_evaluates_and_replays_on_the_callers_loop(tmp_path):
    repo = write_repo(tmp_path, {".afctl/.gitignore": "*\n", "a.yaml": AGENT, "s.yaml": SUITE})

    async def main() -> tuple[str | None, list[str], bool, bool, str]:
        async with AsyncContext(workspace=repo) as context:
            outcome = await context.apply(str(repo / "a.yaml"))
            result = await context.run("agent/a", "hello")
            runs = [r.id for r in await context.runs()]
            (evaluated,) = await context.evaluate([str(repo / "s.yaml")])
            replayed = await context.replay(result.run_id)
            assert outcome.applied
            assert runs == [result.run_id]
            return result.output, runs, evaluated.passed, replayed.reproduced, result.run_id

    output, _, passed, reproduced, run_id = asyncio.run(main())
    assert (output, passed, reproduced) == ("hello", True, True)
    # closed: everything is on disk for a later reader
    with sqlite3.connect(repo / ".afctl" / "logs.db") as db:
        (status,) = db.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
    assert status == "succeeded"


def test_async_context_runs_concurrently_on_one_loop(tmp_path):
    repo = write_repo(tmp_path, {".afctl/.gitignore": "*\n", "a.yaml": AGENT})

    async def main() -> list[str | None]:
        async with AsyncContext(workspace=repo) as context:
            await context.apply(str(repo))
            results = await asyncio.gather(
                *(context.run("agent/a", f"hello {i}") for i in range(5))
            )
            return sorted(r.output for r in results)

    assert asyncio.run(main()) == [f"hello {i}" for i in range(5)]


def test_a_context_keeps_its_connections_between_calls(tmp_path):
    repo = write_repo(tmp_path, {".afctl/.gitignore": "*\n", "a.yaml": AGENT})
    with Context(workspace=repo) as context:
        context.apply(str(repo))
        store = context.services.state.store()
        first = context.run("agent/a", "one")
        log = context.services.logs.log
        second = context.run("agent/a", "two")
        assert context.services.state.store() is store
        assert context.services.logs.log is log
        # the catalog of applied resources is read once per state serial
        assert context.services.state.catalog() is context.services.state.catalog()
        # another reader sees each run as soon as the call returns
        with sqlite3.connect(repo / ".afctl" / "logs.db") as db:
            done = {row[0] for row in db.execute("SELECT id FROM runs")}
        assert done == {first.run_id, second.run_id}
    assert context.services.logs._log is None and context.services.state._store is None


def test_the_catalog_follows_an_apply_made_elsewhere(tmp_path):
    repo = write_repo(tmp_path, {".afctl/.gitignore": "*\n", "a.yaml": AGENT})
    with Context(workspace=repo) as watcher:
        assert watcher.services.state.catalog().find("Agent", "a") is None
        with Context(workspace=repo) as other:
            other.apply(str(repo))
        assert watcher.services.state.catalog().find("Agent", "a") is not None


def test_outside_a_workspace_validating_creates_none(tmp_path, monkeypatch):
    """Only writing state or logs makes `.afctl/`; validating a folder that is no repository
    caches its results in the user's cache folder instead."""
    monkeypatch.delenv("AFCTL_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = write_repo(tmp_path / "plain", {"a.yaml": AGENT})
    assert invoke(["validate", "-f", "."], cwd=folder).exit_code == 0
    assert not (folder / ".afctl").exists()
    assert (tmp_path / "cache" / "afctl" / "validate.json").exists()

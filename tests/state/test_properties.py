"""Properties of plan and apply over random sets of manifests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from afctl.context import Context
from afctl.testing import write_repo
from tests.postgres import start_over

pytestmark = pytest.mark.usefixtures("backend")  # every test on SQLite and PostgreSQL

names = st.text(alphabet="abcdefghij", min_size=1, max_size=6)


@st.composite
def manifests(draw: st.DrawFn) -> dict[tuple[str, str], str]:
    """A set of valid, self-contained manifests keyed by (kind, name)."""
    found: dict[tuple[str, str], str] = {}
    for name in draw(st.sets(names, max_size=4)):
        temperature = draw(st.sampled_from([0, 0.2, 0.7]))
        found[("Model", name)] = (
            f"apiVersion: afctl/v1\nkind: Model\nmetadata: {{name: {name}}}\n"
            f"spec: {{provider: local, model: echo, params: {{temperature: {temperature}}}}}\n"
        )
    for name in draw(st.sets(names, max_size=4)):
        turns = draw(st.integers(1, 9))
        label = draw(st.sampled_from(["cx", "ops"]))
        found[("Agent", name)] = (
            f"apiVersion: afctl/v1\nkind: Agent\nmetadata: {{name: {name}, labels: {{team: {label}}}}}\n"
            f"spec: {{model: local/echo, limits: {{max_turns: {turns}}}}}\n"
        )
    return found


def write(root: Path, docs: dict[tuple[str, str], str], layout: str, order: list[int]) -> None:
    """Write the manifests one per file, all in one file, or grouped by kind."""
    items = [list(docs.items())[i] for i in order]
    if layout == "one-file":
        write_repo(root, {"all.yaml": "---\n".join(text for _, text in items) or "# empty\n"})
    elif layout == "by-kind":
        grouped: dict[str, list[str]] = {}
        for (kind, _), text in items:
            grouped.setdefault(kind, []).append(text)
        write_repo(root, {f"{k.lower()}s.yaml": "---\n".join(v) for k, v in grouped.items()})
    else:
        write_repo(root, {f"{kind}/{name}.yaml": text for (kind, name), text in items})


def comparable(plan):  # type: ignore[no-untyped-def]
    return [(c.action, c.ref, c.after_hash, c.fields) for c in plan.changes]


class Workspace:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="afctl-prop-"))
        self.repo = self.root / "repo"

    def context(self) -> Context:
        return Context(workspace=self.root)

    def __enter__(self) -> Workspace:
        start_over()  # a new PostgreSQL workspace too
        return self

    def __exit__(self, *_: object) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@settings(max_examples=25)
@given(manifests(), manifests(), st.booleans())
def test_after_apply_the_plan_is_empty(first, second, prune):
    with Workspace() as ws:
        for docs in (first, second):
            if ws.repo.exists():
                shutil.rmtree(ws.repo)
            ws.repo.mkdir()
            write(ws.repo, docs, "per-file", list(range(len(docs))))
            if not docs:
                (ws.repo / "empty.yaml").write_text("# nothing\n")
            ws.context().apply(str(ws.repo), prune=prune)
            again = ws.context().plan(str(ws.repo), prune=prune)
            assert not again.has_changes
            applied = {(r.kind, r.name) for r in ws.context().get()}
            assert applied >= set(docs)
            if prune:
                assert applied == set(docs)


@settings(max_examples=25)
@given(manifests(), st.randoms(), st.sampled_from(["per-file", "one-file", "by-kind"]))
def test_manifest_order_and_file_layout_never_change_a_plan(docs, rnd, layout):
    with Workspace() as ws:
        ws.repo.mkdir()
        write(ws.repo, docs, "per-file", list(range(len(docs))))
        (ws.repo / "keep.yaml").write_text("# keeps the folder non-empty\n")
        ws.context().apply(str(ws.repo), prune=True)
        changed = {k: v.replace("max_turns: ", "max_turns: 1") for k, v in docs.items()}
        changed.popitem() if changed else None
        order = list(range(len(changed)))
        rnd.shuffle(order)
        plans = []
        for style, sequence in [("per-file", sorted(order)), (layout, order)]:
            shutil.rmtree(ws.repo)
            ws.repo.mkdir()
            write(ws.repo, changed, style, sequence)
            (ws.repo / "keep.yaml").write_text("# keeps the folder non-empty\n")
            plans.append(ws.context().plan(str(ws.repo), prune=True))
        assert comparable(plans[0]) == comparable(plans[1])


@settings(max_examples=20)
@given(manifests(), manifests())
def test_saving_and_loading_a_plan_applies_the_same_as_applying_directly(before, after):
    results = []
    for saved in (False, True):
        with Workspace() as ws:
            ws.repo.mkdir()
            write(ws.repo, before, "per-file", list(range(len(before))))
            (ws.repo / "keep.yaml").write_text("# keep\n")
            ws.context().apply(str(ws.repo))
            shutil.rmtree(ws.repo)
            ws.repo.mkdir()
            write(ws.repo, after, "per-file", list(range(len(after))))
            (ws.repo / "keep.yaml").write_text("# keep\n")
            if saved:
                path = ws.root / "plan.json"
                Context.save_plan(ws.context().plan(str(ws.repo), prune=True), path)
                ws.context().apply_saved_plan(Context.read_plan(path))
            else:
                ws.context().apply(str(ws.repo), prune=True)
            results.append(
                sorted((r.ref, r.hash, r.revision, r.source_set) for r in ws.context().get())
            )
    assert results[0] == results[1]

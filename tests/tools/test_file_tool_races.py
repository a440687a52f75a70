"""Built-in file tools against the filesystem tricks of issue 14 #13: hard links to files
outside, FIFOs, a folder swapped for a symbolic link while calls run, and afctl's own
folders."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from pathlib import Path

import pytest

from afctl.errors import RunError
from afctl.tools.builtin import BuiltinFileTool


def tools(root: Path) -> tuple[BuiltinFileTool, BuiltinFileTool, BuiltinFileTool]:
    return (
        BuiltinFileTool("read_file", "read_file", root),
        BuiltinFileTool("write_file", "write_file", root),
        BuiltinFileTool("list_dir", "list_dir", root),
    )


def call(tool: BuiltinFileTool, **arguments: str) -> object:
    return asyncio.run(tool.call(arguments))


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    (root / "d").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.txt").write_text("outside secret")
    (root / "d" / "f.txt").write_text("inside")
    return root, outside


def test_a_hard_link_to_a_file_outside_is_neither_read_nor_written(layout):
    root, outside = layout
    os.link(outside / "secret.txt", root / "linked.txt")
    read, write, _ = tools(root)
    with pytest.raises(RunError, match="other hard links"):
        call(read, path="linked.txt")
    with pytest.raises(RunError, match="other hard links"):
        call(write, path="linked.txt", content="overwritten")
    assert (outside / "secret.txt").read_text() == "outside secret"


def test_a_fifo_is_refused_without_hanging(layout):
    root, _ = layout
    os.mkfifo(root / "pipe")
    read, write, _ = tools(root)
    with pytest.raises(RunError, match="not a regular file"):
        call(write, path="pipe", content="x")
    with pytest.raises(RunError, match="not a regular file"):
        call(read, path="pipe")


def test_links_anywhere_on_the_way_are_refused(layout):
    root, outside = layout
    (root / "out").symlink_to(outside)
    (root / "in").symlink_to(root / "d")  # even one that stays inside: never followed
    read, write, listing = tools(root)
    for path in ("out/secret.txt", "in/f.txt"):
        with pytest.raises(RunError, match="symbolic link"):
            call(read, path=path)
    with pytest.raises(RunError, match="symbolic link"):
        call(write, path="out/new.txt", content="x")
    with pytest.raises(RunError, match="symbolic link"):
        call(listing, path="out")
    assert not (outside / "new.txt").exists()


@pytest.mark.parametrize("path", [".afctl/state.db", ".git/config", "d/../.afctl/x", "a/.git"])
def test_afctl_and_git_folders_are_never_touched(layout, path):
    root, _ = layout
    (root / ".afctl").mkdir()
    (root / ".afctl" / "state.db").write_text("state")
    read, write, listing = tools(root)
    with pytest.raises(RunError):
        call(read, path=path)
    with pytest.raises(RunError):
        call(write, path=path, content="x")
    assert ".afctl/" not in call(listing, path=".")  # type: ignore[operator]
    assert (root / ".afctl" / "state.db").read_text() == "state"


def test_swapping_a_folder_for_a_link_during_calls_lets_nothing_through(layout):
    root, outside = layout
    (outside / "f.txt").write_text("outside file")
    read, write, _ = tools(root)
    stop = threading.Event()

    def swap() -> None:
        real, parked = root / "d", root / "parked"
        while not stop.is_set():
            try:
                real.rename(parked)
                real.symlink_to(outside)
                real.unlink()
                parked.rename(real)
            except OSError:  # write_file made d while it was away: put things back
                while parked.exists():
                    try:
                        if real.is_symlink():
                            real.unlink()
                        elif real.exists():
                            shutil.rmtree(real)
                        parked.rename(real)
                    except OSError:
                        continue

    swapper = threading.Thread(target=swap, daemon=True)
    swapper.start()
    leaked = []
    try:
        for _ in range(1500):
            try:
                text = call(read, path="d/f.txt")
                if text != "inside":
                    leaked.append(text)
            except RunError:
                pass
            try:
                call(write, path="d/f.txt", content="inside")
            except RunError:
                pass
    finally:
        stop.set()
        swapper.join()
    assert leaked == []
    assert (outside / "f.txt").read_text() == "outside file"
    assert (outside / "secret.txt").read_text() == "outside secret"

"""A damaged state.db, logs.db or knowledge.db is refused by name, never started over
(issue 14 #14): a 0-byte file would otherwise come back as a new, empty workspace."""

from __future__ import annotations

from pathlib import Path

import pytest

from afctl.testing import invoke, write_repo

AGENT = "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: local/echo}\n"


def applied(tmp_path: Path) -> Path:
    repo = write_repo(tmp_path, {".afctl/.gitignore": "*\n", "a.yaml": AGENT})
    assert invoke(["apply", "-f", ".", "--yes"], cwd=repo).exit_code == 0
    assert invoke(["run", "agent/a", "hi"], cwd=repo).exit_code == 0
    return repo


def damage(path: Path, how: str) -> None:
    for side in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        side.unlink(missing_ok=True)
    if how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"this is not a database at all" * 100)
    else:  # a valid header, then the rest torn away and scribbled over
        data = path.read_bytes()
        path.write_bytes(data[:100] + b"\xff" * (len(data) - 100))


@pytest.mark.parametrize("how", ["empty", "garbage", "torn"])
@pytest.mark.parametrize(
    ("file", "command"),
    [("state.db", ["get", "agents"]), ("state.db", ["apply", "-f", ".", "--yes"]),
     ("logs.db", ["runs"]), ("logs.db", ["run", "agent/a", "hi"])],
)  # fmt: skip
def test_a_damaged_database_is_named_and_left_as_it_is(tmp_path, file, command, how):
    repo = applied(tmp_path)
    path = repo / ".afctl" / file
    damage(path, how)
    before = path.read_bytes()
    result = invoke(command, cwd=repo)
    assert result.exit_code in (1, 64), result.output
    assert "internal error" not in result.output and "Traceback" not in result.output
    assert file in result.output and ("damaged" in result.output or "empty" in result.output
                                      or "not a SQLite" in result.output)  # fmt: skip
    assert path.read_bytes() == before  # nothing was started over


def test_new_databases_are_created_whole(tmp_path):
    repo = applied(tmp_path)
    leftovers = [p.name for p in (repo / ".afctl").iterdir() if p.name.endswith(".new")]
    assert leftovers == []
    assert (repo / ".afctl" / "state.db").read_bytes()[:16] == b"SQLite format 3\x00"

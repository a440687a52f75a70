"""Applies killed at random points, and applies racing each other, in real processes."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from afctl.context import Context

AFCTL = str(Path(sys.executable).parent / "afctl")
COUNT = 1500


def write_models(repo: Path, temperature: float) -> None:
    repo.mkdir(exist_ok=True)
    documents = [
        f"apiVersion: afctl/v1\nkind: Model\nmetadata: {{name: m{i}}}\n"
        f"spec: {{provider: local, model: echo, params: {{temperature: {temperature}}}}}\n"
        for i in range(COUNT)
    ]
    (repo / "models.yaml").write_text("---\n".join(documents))


def state_of(root: Path) -> tuple[int, set[float], int]:
    """(serial, temperatures applied, resource count), after checking the database is sound."""
    connection = sqlite3.connect(root / ".afctl" / "state.db")
    try:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        row = connection.execute("SELECT serial FROM environments WHERE name = 'default'")
        serial = (row.fetchone() or [0])[0]
        temperatures = {
            json.loads(document)["spec"]["params"]["temperature"]
            for (document,) in connection.execute("SELECT document FROM resources")
        }
        count = connection.execute("SELECT COUNT(*) FROM resources").fetchone()[0]
        revisions = connection.execute("SELECT COUNT(*) FROM revisions").fetchone()[0]
        assert revisions == serial * COUNT
        return serial, temperatures, count
    finally:
        connection.close()


def lock_taken(root: Path) -> bool:
    try:
        connection = sqlite3.connect(root / ".afctl" / "state.db", timeout=1)
        try:
            return connection.execute("SELECT COUNT(*) FROM locks").fetchone()[0] > 0
        finally:
            connection.close()
    except sqlite3.Error:
        return False


def wait_for_writes(root: Path, process: subprocess.Popen[bytes]) -> None:
    """Until the apply starts writing pages to the WAL (or ends)."""
    wal = root / ".afctl" / "state.db-wal"
    start = wal.stat().st_size if wal.exists() else 0
    deadline = time.monotonic() + 30
    while process.poll() is None and time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size > start + 32 * 1024:
            return
        time.sleep(0.001)


def spawn_apply(root: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "AFCTL_CACHE_DIR": str(root / "cache")}
    return subprocess.Popen(
        [AFCTL, "apply", "-f", "repo", "--yes", *extra],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,  # a full pipe would stall the apply mid-way
        stderr=subprocess.PIPE,
    )


def test_an_apply_killed_at_any_point_leaves_old_or_new_state(tmp_path):
    rng = random.Random(20261124)
    repo = tmp_path / "repo"
    write_models(repo, 0.0)
    Context(workspace=tmp_path).apply(str(repo))
    current = 0.0
    outcomes = []
    for attempt in range(8):
        target = 1.0 if current == 0.0 else 0.0
        write_models(repo, target)
        process = spawn_apply(tmp_path, "--lock-timeout", "0")
        deadline = time.monotonic() + 30
        while not lock_taken(tmp_path) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.005)
        if attempt % 2:
            time.sleep(rng.uniform(0, 1.2))  # anywhere: planning, confirming or writing
        else:
            wait_for_writes(tmp_path, process)  # inside the write transaction
            time.sleep(rng.uniform(0, 0.01))
        process.send_signal(signal.SIGKILL)
        process.communicate()
        serial, temperatures, count = state_of(tmp_path)
        assert count == COUNT
        assert temperatures in ({current}, {target}), temperatures  # never a mixture
        if temperatures == {target}:
            current = target
            outcomes.append("new")
        else:
            outcomes.append("old")
        assert serial == 1 + outcomes.count("new")
        lock = Context(workspace=tmp_path).services.state.require().current_lock()
        if lock is not None:
            Context(workspace=tmp_path).force_unlock(lock.lock_id)
    print("outcomes of the killed applies:", outcomes)


def race(root: Path, lock_timeout: str) -> list[tuple[int, str]]:
    """Apply version 0.0, then start two applies of version 0.5 at once; their outcomes."""
    repo = root / "repo"
    write_models(repo, 0.0)
    Context(workspace=root).apply(str(repo))
    write_models(repo, 0.5)
    processes = [spawn_apply(root, "--lock-timeout", lock_timeout) for _ in range(2)]
    results = []
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        results.append((process.returncode, stderr.decode()))
    return results


def test_concurrent_applies_never_both_write(tmp_path):
    results = race(tmp_path, "0")
    codes = sorted(code for code, _ in results)
    serial, temperatures, _ = state_of(tmp_path)
    assert temperatures == {0.5}
    if codes == [0, 4]:
        assert serial == 2
        loser = next(text for code, text in results if code == 4)
        assert "the workspace is locked" in loser and "pid" in loser
    else:  # they did not overlap: the second found nothing left to do
        assert codes == [0, 0] and serial == 2


def test_a_waiting_apply_goes_ahead_once_the_lock_is_free(tmp_path):
    for code, stderr in race(tmp_path, "60"):
        assert code == 0, stderr
    assert state_of(tmp_path)[:2] == (2, {0.5})

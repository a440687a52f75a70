"""`afctl worker`s as processes on one broker and one database, for tests to start and kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

AFCTL = str(Path(sys.executable).parent / "afctl")


def cluster_env(database_url: str, broker_url: str) -> dict[str, str]:
    """The environment of workers (and whoever queues for them) in a test: jobs of a killed
    worker redelivered after 3 s, heartbeats every 0.5 s."""
    return {**os.environ, "AFCTL_DATABASE_URL": database_url, "AFCTL_BROKER_URL": broker_url,
            "AFCTL_BROKER_VISIBILITY_S": "3", "AFCTL_WORKER_HEARTBEAT_S": "0.5"}  # fmt: skip


class Cluster:
    """Workers as processes, on one broker and one database."""

    def __init__(self, repo: Path, env: dict[str, str]) -> None:
        self.repo = repo
        self.env = env
        self.workers: dict[str, subprocess.Popen[str]] = {}

    def start(self, name: str, concurrency: int = 10) -> None:
        log = self.repo / f"{name}.log"
        with log.open("w") as output:
            process = subprocess.Popen([AFCTL, "worker", "-c", str(concurrency), "-n", name],
                                       cwd=self.repo, env=self.env, stdout=output,
                                       stderr=subprocess.STDOUT, text=True)  # fmt: skip
        deadline = time.monotonic() + 30
        while f"afctl worker {name}" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        self.workers[name] = process

    def afctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([AFCTL, *args], cwd=self.repo, env=self.env, capture_output=True,
                              text=True, timeout=300)  # fmt: skip

    def kill(self, name: str) -> None:
        process = self.workers.pop(name)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)

    def stop(self) -> None:
        for process in self.workers.values():
            process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        self.workers.clear()


def cluster_on(
    repo: Path, database_url: str, broker_url: str, monkeypatch: Any
) -> Iterator[Cluster]:
    """A cluster over `repo` (migrated and applied, this process pointed at the same database
    and broker), its workers stopped afterwards: a fixture's body."""
    from afctl.context import Context

    env = cluster_env(database_url, broker_url)
    for name in ("AFCTL_DATABASE_URL", "AFCTL_BROKER_URL"):
        monkeypatch.setenv(name, env[name])
    Context(workspace=repo).db_migrate()
    Context(workspace=repo).apply(str(repo))
    running = Cluster(repo, env)
    yield running
    running.stop()

"""A throwaway Redis for the tests: Debian's `redis-server` on a free loopback port, nothing
saved. `.ci/run` installs the package; without it the tests that need it fail, saying how to
get it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("Redis is not installed: apt-get install -y redis-server "
                               "(.ci/run does)")  # fmt: skip
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.root = Path(tempfile.mkdtemp(prefix="afctl-redis-"))
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        self._next = 0

    def url(self) -> str:
        """A Redis database of its own for each caller (16 in all, then they are reused)."""
        self._next = (self._next + 1) % 16
        return f"redis://127.0.0.1:{self.port}/{self._next}"

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)
        shutil.rmtree(self.root, ignore_errors=True)

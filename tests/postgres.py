"""A throwaway PostgreSQL server for the tests: Debian's `postgresql` binaries, a cluster made
with initdb in a temporary folder, listening on a free loopback port with password logins.
`.ci/run` installs the package; without it the tests that need it fail, saying how to get it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

USER = "afctl"
PASSWORD = "test-password-4c7e"


def _bin_dir() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: apt-get install -y postgresql (.ci/run does)"
        )
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One cluster; `database()` makes a fresh database on it and returns its URL."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="afctl-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self._as = ["runuser", "-u", "postgres", "--"]
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres", "postgres")
        password_file = self.root / "password"
        password_file.write_text(PASSWORD + "\n")
        if self._as:
            shutil.chown(password_file, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", USER, "--auth=scram-sha-256",
                  f"--pwfile={password_file}", "--no-sync", "-E", "UTF8")  # fmt: skip
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")  # fmt: skip
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l",
                  str(self.root / "server.log"), "-w", "start")  # fmt: skip

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self._as, str(self.bin / program), *args], check=True,
                       capture_output=True, text=True)  # fmt: skip

    def url(self, database: str = "postgres", password: str = PASSWORD) -> str:
        return f"postgresql://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop(self, url: str) -> None:
        import psycopg

        from afctl.storage.sql import close_pool

        close_pool(url)
        name = url.rsplit("/", 1)[1]
        with (contextlib.suppress(psycopg.Error),
              psycopg.connect(self.url(), autocommit=True) as connection):  # fmt: skip
            connection.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def stored_bytes(workspace: Path) -> bytes:
    """Everything the workspace's state and prompt log hold, as bytes: the SQLite files, or
    every row of the PostgreSQL database AFCTL_DATABASE_URL names (for checks that a secret
    was never written)."""
    url = os.environ.get("AFCTL_DATABASE_URL")
    if not url:
        return b"".join(p.read_bytes() for p in sorted(workspace.glob("*.db*")) if p.is_file())
    import psycopg

    chunks = []
    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname LIKE 'afctl_%'"
        ).fetchall()
        for schema, table in tables:
            for row in connection.execute(f'SELECT * FROM {schema}."{table}"'):
                chunks.append(repr(row).encode())
    return b"\n".join(chunks)


def start_over() -> None:
    """Make the PostgreSQL database AFCTL_DATABASE_URL names (if any) new again: its afctl
    schemas dropped and migrated afresh (each example of a property test gets a new
    workspace)."""
    url = os.environ.get("AFCTL_DATABASE_URL")
    if not url:
        return
    import psycopg

    from afctl.dbops.service import DbService
    from afctl.storage.sql import close_pool
    from afctl.workspace import Workspace

    close_pool(url)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA IF EXISTS afctl_state, afctl_log CASCADE")
    DbService(Workspace(tempfile.gettempdir())).migrate()


def elsewhere(
    workspace: Path, query: str, params: tuple[object, ...] = ()
) -> list[tuple[object, ...]]:
    """The rows of `query` (with `?` parameters) on the prompt log as another connection sees
    them (what is committed): logs.db, or the PostgreSQL database AFCTL_DATABASE_URL names;
    none while the log has no tables yet."""
    url = os.environ.get("AFCTL_DATABASE_URL")
    if not url:
        import sqlite3

        path = workspace / "logs.db"
        if not path.exists():
            return []
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return list(connection.execute(query, params))
        except sqlite3.OperationalError:  # not created yet
            return []
        finally:
            connection.close()
    import psycopg

    with psycopg.connect(url) as connection:
        connection.execute("SET search_path TO afctl_log")
        return list(connection.execute(query.replace("?", "%s"), params))

"""Shared test set-up: no network beyond loopback, an isolated cache, and repo helpers."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["afctl.testing"]

settings.register_profile(
    "afctl", deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
settings.load_profile("afctl")

EXAMPLES = Path(__file__).parent / "examples"


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX paths
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests may talk to loopback servers only; any other connection fails loudly."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise NetworkBlocked(f"tests may not connect to {address!r}")
        return real_connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> Any:
        if not _is_loopback(address):
            raise NetworkBlocked(f"tests may not connect to {address!r}")
        return real_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    yield


@pytest.fixture(autouse=True)
def _isolated_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Each test gets its own validate cache and no workspace or debug settings from outside."""
    monkeypatch.setenv("AFCTL_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
    for name in ("AFCTL_WORKSPACE", "AFCTL_ENV", "AFCTL_DEBUG", "NO_COLOR", "AFCTL_DATABASE_URL",
                 "AFCTL_STATE_DATABASE_URL", "AFCTL_LOG_DATABASE_URL", "AFCTL_BROKER_URL",
                 "AFCTL_EXECUTOR", "AFCTL_QUEUE"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    # the secrets earlier tests resolved (random ones from hypothesis among them) would redact
    # this test's output, as if one process had run them all
    from afctl.safety.secrets import PROCESS

    PROCESS.forget()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A PostgreSQL server on loopback for this test session (see tests/postgres.py)."""
    from tests.postgres import PostgresServer

    server = PostgresServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A Redis server on loopback for this test session (see tests/redis_server.py)."""
    from tests.redis_server import RedisServer

    server = RedisServer()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def broker_url(redis_server: Any) -> str:
    """A Redis database of its own, emptied, for one test's queue."""
    import redis

    url = str(redis_server.url())
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def postgres_url(postgres: Any) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped after the test."""
    url = postgres.database()
    try:
        yield url
    finally:
        postgres.drop(url)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test using `backend` runs on SQLite and on PostgreSQL (on SQLite only when marked
    `sqlite_only`: it is about the files themselves)."""
    if "backend" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("backend", ["sqlite"] if only else ["sqlite", "postgresql"],
                             indirect=True)  # fmt: skip


@pytest.fixture
def backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the test's workspace keeps its state and prompt log: the SQLite files, or a new
    PostgreSQL database (AFCTL_DATABASE_URL, migrated with afctl db migrate)."""
    kind = str(request.param)
    if kind == "postgresql":
        server = request.getfixturevalue("postgres")
        url = server.database()
        request.addfinalizer(lambda: server.drop(url))
        monkeypatch.setenv("AFCTL_DATABASE_URL", url)
        from afctl.dbops.service import DbService
        from afctl.workspace import Workspace

        DbService(Workspace(request.getfixturevalue("tmp_path"))).migrate()
    return kind


@pytest.fixture
def llm_server() -> Iterator[Any]:
    """A loopback server speaking the OpenAI and Anthropic wire protocols (see llm_server.py)."""
    from afctl.fake_llm import LLMServer

    server = LLMServer().start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _no_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    """Third-party plugins stay out of tests unless a test asks for them."""
    monkeypatch.setenv("AFCTL_PLUGINS", "0")

"""Opening afctl's SQLite files (state.db, logs.db, knowledge.db) so that a damaged one is
named and refused, never silently started over.

SQLite treats a 0-byte file as a new, empty database: a truncated `state.db` would come back
with serial 0 and no resources, and a truncated `logs.db` without its runs. afctl creates its
files whole (made under a temporary name, then renamed into place), so a file that exists but
is empty or does not start with SQLite's header was damaged outside afctl: it is refused, by
name, with what to do.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from afctl.errors import UsageError


class DatabaseDamaged(UsageError):
    """An afctl database file that is empty, not SQLite, or corrupt."""


def _damaged(path: Path, why: str) -> DatabaseDamaged:
    return DatabaseDamaged(
        f"{path}: {why}",
        hint=f"restore {path.name} from a backup; or, to start it over and lose what it held, "
        f"move it away (mv {path} {path}.damaged)",
    )


def check_file(path: Path) -> None:
    """Raises DatabaseDamaged when `path` exists but is empty.

    Only `stat`: opening the file here and closing it would drop the POSIX locks SQLite
    holds on it for other connections of this process (a known way to corrupt a database).
    A file that is not SQLite is refused by SQLite itself (see `connect`)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DatabaseDamaged(f"{path}: cannot read it ({exc.strerror})") from None
    if size == 0:
        raise _damaged(path, "the file is empty (0 bytes), not an afctl database")


def ensure_created(path: Path) -> None:
    """Create an empty database at `path` (in WAL mode) if there is none: made under a
    temporary name and renamed into place, so no half-made file is ever left there."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        connection = sqlite3.connect(temporary)
        try:
            connection.execute("PRAGMA journal_mode = WAL")
        finally:
            connection.close()
        with contextlib.suppress(FileExistsError):  # another process made it first: keep it
            os.link(temporary, path)
    finally:
        for leftover in (temporary, Path(f"{temporary}-wal"), Path(f"{temporary}-shm")):
            leftover.unlink(missing_ok=True)


@contextlib.contextmanager
def named_errors(path: Path) -> Iterator[None]:
    """SQLite's complaints about a damaged file as one error that names it."""
    try:
        yield
    except sqlite3.OperationalError:
        raise  # locked, busy, read-only: not damage
    except sqlite3.DatabaseError as exc:
        raise _damaged(path, f"the database is damaged ({exc})") from None


def connect(path: Path, *, create: bool = True, **options: object) -> sqlite3.Connection:
    """A connection to the afctl database at `path`, after checking it is one (and creating
    it whole when `create` and it does not exist).

    Raises:
        DatabaseDamaged: the file is empty, not SQLite, or its header is corrupt.
    """
    if create:
        ensure_created(path)
    check_file(path)
    connection: sqlite3.Connection = sqlite3.connect(path, **options)  # type: ignore[call-overload]
    try:
        with named_errors(path):  # "file is not a database" for anything but SQLite
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        connection.close()
        raise
    return connection

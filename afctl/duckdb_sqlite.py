"""DuckDB with its sqlite extension, offline: the extension file comes from the
duckdb-ext-sqlite wheel (built for exactly the pinned duckdb release); `INSTALL sqlite` from
the network is the fallback. Imported only on the paths that need DuckDB."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from afctl.errors import RunError


def extension_file() -> Path | None:
    """The sqlite_scanner extension shipped in the duckdb-ext-sqlite wheel, if installed."""
    spec = importlib.util.find_spec("duckdb_ext")
    for base in (spec.submodule_search_locations or []) if spec is not None else []:
        for found in sorted(Path(base).glob("extensions/*/*/sqlite_scanner.duckdb_extension")):
            return found
    return None


def connect() -> Any:
    """An in-memory DuckDB connection that can ATTACH SQLite files.

    Raises:
        RunError: the sqlite extension is neither installed nor downloadable.
    """
    import duckdb

    connection = duckdb.connect()
    shipped = extension_file()
    try:
        if shipped is not None:
            connection.execute(f"LOAD '{shipped.as_posix()}'")
        else:
            connection.execute("INSTALL sqlite")
            connection.execute("LOAD sqlite")
    except duckdb.Error as exc:
        connection.close()
        raise RunError(
            f"DuckDB cannot load its sqlite extension: {exc}",
            hint="pip install the duckdb-ext-sqlite release that matches duckdb",
        ) from None
    return connection

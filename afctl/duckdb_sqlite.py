"""DuckDB with its sqlite (or postgres) extension, offline: the extension files come from the
duckdb-ext-sqlite and duckdb-ext-postgres wheels (built for exactly the pinned duckdb release);
`INSTALL` from the network is the fallback. Imported only on the paths that need DuckDB."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from afctl.errors import RunError

_WHEELS = {"sqlite": "duckdb-ext-sqlite", "postgres": "duckdb-ext-postgres"}


def extension_file(name: str = "sqlite") -> Path | None:
    """The `NAME_scanner` extension shipped in its duckdb-ext wheel, if installed."""
    spec = importlib.util.find_spec("duckdb_ext")
    for base in (spec.submodule_search_locations or []) if spec is not None else []:
        for found in sorted(Path(base).glob(f"extensions/*/*/{name}_scanner.duckdb_extension")):
            return found
    return None


def connect(extension: str = "sqlite") -> Any:
    """An in-memory DuckDB connection that can ATTACH SQLite files (`extension` "sqlite") or
    PostgreSQL databases ("postgres").

    Raises:
        RunError: the extension is neither installed nor downloadable.
    """
    import duckdb

    connection = duckdb.connect()
    shipped = extension_file(extension)
    try:
        if shipped is not None:
            connection.execute(f"LOAD '{shipped.as_posix()}'")
        else:
            connection.execute(f"INSTALL {extension}")
            connection.execute(f"LOAD {extension}")
    except duckdb.Error as exc:
        connection.close()
        raise RunError(
            f"DuckDB cannot load its {extension} extension: {exc}",
            hint=f"pip install the {_WHEELS[extension]} release that matches duckdb",
        ) from None
    return connection

"""Where afctl's data files live: inside the wheel, or at the top of a source checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The directory of shipped data `name` (`schemas` or `templates`).

    A wheel carries them under `afctl/_data/`; an editable install or a source checkout reads
    the top-level folders of the repository, which are the single source of truth.
    """
    shipped = _PACKAGE / "_data" / name
    if shipped.is_dir():
        return shipped
    return _PACKAGE.parent / name

"""The wheel must carry the schemas and templates: they are the single source of truth."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_ships_schemas_templates_and_types(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("afctl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for schema in (ROOT / "schemas").glob("*.json"):
        assert f"afctl/_data/schemas/{schema.name}" in names
    for template in (ROOT / "templates").rglob("*"):
        if template.is_file() and "__pycache__" not in template.parts:
            relative = template.relative_to(ROOT / "templates").as_posix()
            assert f"afctl/_data/templates/{relative}" in names, relative
    assert "afctl/py.typed" in names
    assert not any(name.startswith(("tests/", "bench/")) for name in names)

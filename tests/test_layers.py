"""The layer contracts in pyproject.toml fail the build on an upward import or a cycle.

`make lint` runs lint-imports over the real tree; these tests prove the contracts bite by
running lint-imports over a copy of the package with one bad import added.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_copy(tmp_path: Path, module: str, line: str) -> subprocess.CompletedProcess[str]:
    shutil.copytree(
        REPO / "afctl", tmp_path / "afctl", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "afctl" / module
    target.write_text(target.read_text() + f"\n{line}\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(autouse=True)
def _needs_lint_imports() -> None:
    assert LINT_IMPORTS.exists(), "import-linter is a dev dependency: pip install -e '.[dev]'"


def test_the_tree_as_committed_keeps_its_contracts(tmp_path: Path) -> None:
    result = _lint_copy(tmp_path, "ids.py", "")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_layers_contract(tmp_path: Path) -> None:
    # state sits below the CLI: the state store must never reach up into click commands
    result = _lint_copy(tmp_path, "state/plan.py", "import afctl.cli.main  # noqa")
    assert result.returncode != 0
    assert "afctl.state.plan -> afctl.cli.main" in result.stdout
    assert "BROKEN" in result.stdout


def test_a_function_level_import_cannot_hide_an_upward_edge(tmp_path: Path) -> None:
    result = _lint_copy(
        tmp_path,
        "providers/pricing.py",
        "def _late():\n    from afctl.runtime import agent  # noqa\n    return agent",
    )
    assert result.returncode != 0
    assert "afctl.providers.pricing -> afctl.runtime.agent" in result.stdout

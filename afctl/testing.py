"""Test helpers for users of afctl (and for afctl's own tests).

Write manifests into a temporary repository and run afctl on them exactly as the CLI does,
exit codes included:

    from afctl.testing import write_repo, invoke

    def test_my_agent_is_valid(tmp_path):
        write_repo(tmp_path, {"agents/a.yaml": AGENT_YAML})
        result = invoke(["validate", "-f", "."], cwd=tmp_path)
        assert result.exit_code == 0, result.output

With pytest, `pytest_plugins = ["afctl.testing"]` adds the `afctl_repo` fixture: a function
that writes `{path: text}` into a fresh folder and returns it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Invocation:
    """What one afctl command printed and returned."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def write_repo(root: Path, files: Mapping[str, str | bytes]) -> Path:
    """Write `{relative path: content}` under `root`; text is dedented. Returns `root`."""
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content).lstrip("\n"), "utf-8")
    return root


@contextlib.contextmanager
def _cwd(path: Path | None) -> Iterator[None]:
    if path is None:
        yield
        return
    before = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def invoke(
    args: Sequence[str],
    *,
    cwd: Path | None = None,
    input: str | bytes | None = None,
    env: Mapping[str, str | None] | None = None,
) -> Invocation:
    """Run `afctl ARGS` in this process, as the console script would, and capture its output."""
    from click.testing import CliRunner

    from afctl.cli.main import main

    runner = CliRunner()
    with runner.isolation(input=input, env=dict(env or {})) as streams, _cwd(cwd):
        code = main(list(args))
        sys.stdout.flush()
        sys.stderr.flush()
    stdout, stderr = streams[0], streams[1]
    return Invocation(code, stdout.getvalue().decode(), stderr.getvalue().decode())


try:  # the fixture exists only where pytest does
    import pytest

    @pytest.fixture
    def afctl_repo(tmp_path: Path) -> Callable[[Mapping[str, str | bytes]], Path]:
        """A function writing `{path: text}` into a fresh repository folder, returning it."""

        def make(files: Mapping[str, str | bytes]) -> Path:
            return write_repo(tmp_path, files)

        return make

except ImportError:  # pragma: no cover
    pass

__all__ = ["Invocation", "afctl_repo", "invoke", "write_repo"]

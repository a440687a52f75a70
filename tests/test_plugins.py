"""A real plugin package, installed from tests/plugin_pkg, extends afctl without touching it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PLUGIN = Path(__file__).parent / "plugin_pkg"
AFCTL = Path(sys.executable).parent / "afctl"
AGENT = """\
apiVersion: afctl/v1
kind: Agent
metadata: {name: loud}
spec: {model: shout/very}
"""


def test_a_plugin_provider_is_used_by_validate_and_run(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(PLUGIN)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (tmp_path / "agent.yaml").write_text(AGENT)
    base = {k: v for k, v in os.environ.items() if k != "AFCTL_PLUGINS"}
    with_plugin = {**base, "PYTHONPATH": str(target)}

    def afctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AFCTL), *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    without = afctl("validate", "-f", "agent.yaml", env=base)
    assert without.returncode == 3 and 'unknown model provider "shout"' in without.stdout
    assert afctl("validate", "-f", "agent.yaml", env=with_plugin).returncode == 0
    ran = afctl("run", "-f", "agent.yaml", "hello there", env=with_plugin)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "HELLO THERE (very)"
    off = afctl("validate", "-f", "agent.yaml", env={**with_plugin, "AFCTL_PLUGINS": "0"})
    assert off.returncode == 3

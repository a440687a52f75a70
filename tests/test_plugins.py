"""A real plugin package, installed from tests/plugin_pkg, extends afctl without touching it."""

from __future__ import annotations

import json
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


SUITE = """\
apiVersion: afctl/v1
kind: EvalSuite
metadata: {name: loudness}
spec:
  target: {agent: loud}
  cases:
    - {id: loud, input: hello, assert: [{type: shouted, min_length: 3}]}
    - {id: quiet, input: hello, assert: [{type: not_shouted}]}
"""


def test_a_plugin_provider_and_assertion_are_used_by_validate_run_and_eval(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(PLUGIN)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    (tmp_path / "agent.yaml").write_text(AGENT)
    (tmp_path / "suite.yaml").write_text(SUITE)
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

    # a plugin's assertion type: unknown without it, checked (with its not_ form) with it
    unknown = afctl("validate", "-f", "suite.yaml", env=base)
    assert unknown.returncode == 3 and 'unknown assertion type "shouted"' in unknown.stdout
    assert "suite.yaml:7" in unknown.stdout
    evaluated = afctl("eval", ".", "--json", "eval.json", env=with_plugin)
    assert evaluated.returncode == 5, evaluated.stderr  # the not_shouted case fails

    cases = {c["case_id"]: c for c in json.loads((tmp_path / "eval.json").read_text())[0]["cases"]}
    assert cases["loud"]["passed"] and not cases["quiet"]["passed"]
    assert (
        cases["quiet"]["assertions"][0]["reason"]
        == "it held, and must not: not shouted: 'HELLO (very)'"
    )


def test_afctls_own_assertions_are_registered_through_the_plugin_hook():
    """The built-in assertion types are a default plugin, like providers and tools: the
    validator's list of known types and the registrations agree."""
    from afctl.eval.assertions import MODEL_CHECKS
    from afctl.eval.builtin_assertions import BUILTIN
    from afctl.manifests.checks import BUILTIN_ASSERTIONS
    from afctl.plugins import assertion_types, plugin_manager

    assert "afctl.eval.builtin_assertions" in dict(plugin_manager().list_name_plugin())
    registered = assertion_types()
    assert all(registered[name] is check for name, check in BUILTIN.items())
    assert set(BUILTIN) | MODEL_CHECKS == set(BUILTIN_ASSERTIONS)

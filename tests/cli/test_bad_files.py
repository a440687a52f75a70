"""Every command that takes a file, given a missing, empty, garbage or folder-instead-of-file
argument (issue 15 #13): one clear message, a documented exit code, never "internal error"
and never a traceback."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from afctl.testing import invoke, write_repo

AGENT = "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: local/echo}\n"
SUITE = (
    "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\n"
    "spec: {target: {agent: a}, cases: [{input: hi}]}\n"
)
FLOW = (
    "apiVersion: afctl/v1\nkind: Workflow\nmetadata: {name: w}\nspec:\n"
    "  steps: [{id: s, agent: a, input: hi}]\n"
)

COMMANDS = {
    "validate": ["validate", "-f", "BAD"],
    "plan": ["plan", "-f", "BAD"],
    "plan --out": ["plan", "-f", "ok", "--out", "BAD/plan.json"],
    "apply -f": ["apply", "-f", "BAD", "--yes"],
    "apply -f (asks)": ["apply", "-f", "BAD"],
    "apply PLAN": ["apply", "BAD"],
    "diff": ["diff", "-f", "BAD"],
    "delete -f": ["delete", "-f", "BAD", "--yes"],
    "run -f": ["run", "agent/a", "hi", "-f", "BAD"],
    "run --input-file": ["run", "workflow/w", "-f", "ok", "--input-file", "BAD"],
    "eval": ["eval", "BAD"],
    "eval --junit": ["eval", "ok", "--junit", "BAD/j.xml"],
    "eval --html": ["eval", "ok", "--html", "BAD/r.html"],
    "tune": ["tune", "BAD", "--param", "temperature=0,1"],
    "blueprint lint": ["blueprint", "lint", "BAD"],
    "blueprint render": ["blueprint", "render", "BAD"],
    "blueprint render -f": ["blueprint", "render", "bp", "-f", "BAD"],
    "blueprint pack": ["blueprint", "pack", "BAD"],
    "blueprint pack -o": ["blueprint", "pack", "bp", "-o", "BAD/x.afbp"],
    "blueprint install": ["blueprint", "install", "BAD", "--yes"],
    "blueprint publish": ["blueprint", "publish", "BAD", "--registry", "reg"],
    "registry add": ["registry", "add", "r", "BAD"],
    "schema export": ["schema", "export", "BAD"],
    "init": ["init", "BAD"],
    "export --out": ["export", "runs", "--format", "csv", "--out", "BAD/x.csv"],
    "--workspace": ["runs", "--workspace", "BAD"],
}
KINDS = ("missing", "empty", "garbage", "folder")


def bad(tmp_path: Path, kind: str) -> str:
    path = tmp_path / f"bad-{kind}"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "garbage":
        path.write_bytes(os.urandom(64) + b"\x00\xff{[: -\n")
    elif kind == "folder":
        path.mkdir()
        (path / "inner.txt").write_text("not what you expected")
    return str(path)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_a_bad_file_argument_gets_a_clear_message(tmp_path, name, kind):
    repo = write_repo(
        tmp_path / "repo",
        {".afctl/.gitignore": "*\n", "ok/a.yaml": AGENT, "ok/s.yaml": SUITE, "ok/w.yaml": FLOW,
         "bp/blueprint.yaml": "apiVersion: afctl/v1\nkind: Blueprint\nmetadata: {name: bp}\n"
         "spec: {version: 1.0.0}\n", "bp/manifests/a.yaml": AGENT},
    )  # fmt: skip
    target = bad(tmp_path, kind)
    args = [a.replace("BAD", target) for a in COMMANDS[name]]
    result = invoke(args, cwd=repo)
    assert "internal error" not in result.output and "Traceback" not in result.output, (
        args,
        result.output,
    )
    assert result.exit_code in (0, 2, 3, 4, 5, 64), (args, result.exit_code, result.output)
    if result.exit_code != 0:
        assert result.stderr.strip() or result.stdout.strip()

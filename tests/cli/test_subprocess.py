"""Real processes: the console script, exit codes through a shell, and what gets imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

AFCTL = Path(sys.executable).parent / "afctl"
HEAVY = ("openai", "anthropic", "duckdb", "mcp", "jinja2", "jsonschema_rs", "ruamel")


def run(*args: str, cwd: Path | None = None, stdin: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFCTL_DEBUG")}
    return subprocess.run(
        [str(AFCTL), *args], cwd=cwd, input=stdin, capture_output=True, text=True, env=env,
        timeout=120,
    )  # fmt: skip


def test_console_script_version_and_help():
    from afctl import __version__

    assert run("--version").stdout.strip() == f"afctl {__version__}"
    result = run("--help")
    assert result.returncode == 0 and "validate" in result.stdout


def test_exit_codes_reach_the_shell(tmp_path):
    (tmp_path / "bad.yaml").write_text("apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: X}\n")
    assert run("validate", "-f", "bad.yaml", cwd=tmp_path).returncode == 3
    usage = run("validate", "-f", "nope.yaml", cwd=tmp_path)
    assert usage.returncode == 64 and "Traceback" not in usage.stderr
    assert run("frobnicate").returncode == 64


def test_validate_from_stdin_as_json(tmp_path):
    result = run("validate", "-f", "-", "-o", "json", stdin="kind: Agent\n", cwd=tmp_path)
    assert result.returncode == 3
    data = json.loads(result.stdout)
    assert data["diagnostics"][0]["file"] == "<stdin>"


@pytest.mark.parametrize(
    ("args", "forbidden"),
    [
        (["--help"], HEAVY),
        (["validate", "--help"], HEAVY),
        (["validate", "-f", "{repo}"], ("openai", "anthropic", "duckdb", "mcp")),
        (["explain", "Agent.spec"], ("openai", "anthropic", "duckdb", "mcp", "jinja2")),
    ],
)
def test_fast_start_never_imports_heavy_libraries(tmp_path, args, forbidden):
    (tmp_path / "a.yaml").write_text(
        "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\n"
        "spec: {model: local/echo, instructions: 'Hi {{ vars.x | upper }}'}\n"
    )
    argv = [a.replace("{repo}", str(tmp_path)) for a in args]
    code = (
        "import sys\n"
        "from afctl.cli.main import main\n"
        f"code = main({argv!r})\n"
        "loaded = sorted({m.split('.')[0] for m in sys.modules})\n"
        "print('MODULES=' + ','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    line = next(x for x in result.stdout.splitlines() if x.startswith("MODULES="))
    loaded = set(line.removeprefix("MODULES=").split(","))
    assert not loaded & set(forbidden), loaded & set(forbidden)


@pytest.mark.parametrize(("answer", "applied"), [("no", False), ("yes", True)])
def test_apply_asks_on_a_terminal(tmp_path, answer, applied):
    import pty

    (tmp_path / ".afctl").mkdir()
    (tmp_path / "m.yaml").write_text(
        "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: fast}\n"
        "spec: {provider: local, model: echo}\n"
    )
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [str(AFCTL), "apply", "-f", "."],
        cwd=tmp_path,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "NO_COLOR": "1"},
    )
    os.close(terminal)
    output = b""
    while b"Only 'yes' will be accepted" not in output:
        output += os.read(controller, 4096)
    os.write(controller, f"{answer}\n".encode())
    assert process.wait(timeout=60) == 0
    try:
        while chunk := os.read(controller, 4096):
            output += chunk
    except OSError:  # the terminal closes with the process
        pass
    os.close(controller)
    text = output.decode()
    assert "+ model/fast" in text
    assert ("Apply complete: 1 created" in text) is applied
    assert ("Apply cancelled" in text) is not applied

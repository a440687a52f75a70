from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from afctl.cli.main import COMMANDS, load_command
from afctl.testing import invoke, write_repo

VALID = """\
apiVersion: afctl/v1
kind: Agent
metadata: {name: helper}
spec:
  model: local/echo
  instructions: "You help with {{ vars.topic }}"
"""

BROKEN = """\
apiVersion: afctl/v1
kind: Agent
metadata:
  name: helper
spec:
  model: local/echo
  instuctions: "You help"
  limits: {max_turns: "eight"}
"""


def test_validate_reports_every_problem_with_a_snippet(tmp_path):
    write_repo(tmp_path, {"agents/helper.yaml": BROKEN})
    result = invoke(["validate", "-f", "."], cwd=tmp_path)
    assert result.exit_code == 3
    assert result.stdout == (
        "agents/helper.yaml\n"
        'error[schema.unknown-field]: unknown field "instuctions" in spec\n'
        "  --> agents/helper.yaml:7:3  (/spec/instuctions)\n"
        "    |\n"
        '  7 |   instuctions: "You help"\n'
        "    |   ^^^^^^^^^^^\n"
        '  = hint: did you mean "instructions"?\n'
        "error[schema.type]: spec.limits.max_turns must be an integer, not a string\n"
        "  --> agents/helper.yaml:8:23  (/spec/limits/max_turns)\n"
        "    |\n"
        '  8 |   limits: {max_turns: "eight"}\n'
        "    |                       ^^^^^^^\n"
        "\n"
        "✗ 2 errors in 1 file (1 file and 1 resource checked)\n"
    )


def test_validate_json_is_a_stable_documented_structure(tmp_path):
    write_repo(tmp_path, {"a.yaml": BROKEN, "b.yaml": VALID.replace("helper", "other")})
    result = invoke(["validate", "-f", ".", "-o", "json"], cwd=tmp_path)
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert set(data) == {"schema_version", "valid", "summary", "resources", "diagnostics"}
    assert data["schema_version"] == 1 and data["valid"] is False
    assert data["summary"] == {"files": 2, "resources": 2, "errors": 2, "warnings": 0}
    first = data["diagnostics"][0]
    assert set(first) == {
        "severity", "code", "summary", "file", "line", "col", "pointer", "document", "hint",
        "detail",
    }  # fmt: skip
    assert (first["file"], first["line"], first["col"]) == ("a.yaml", 7, 3)


def test_validate_success_and_cache(tmp_path):
    write_repo(tmp_path, {"a.yaml": VALID})
    first = invoke(["validate", "-f", "a.yaml"], cwd=tmp_path)
    assert first.exit_code == 0 and "1 file, 1 resource: valid" in first.stdout
    again = invoke(["validate", "-f", "a.yaml"], cwd=tmp_path)
    assert again.stdout == first.stdout
    fresh = invoke(["validate", "-f", "a.yaml", "--no-cache"], cwd=tmp_path)
    assert fresh.stdout == first.stdout


def test_validate_reads_stdin(tmp_path):
    result = invoke(["validate", "-f", "-"], cwd=tmp_path, input=BROKEN)
    assert result.exit_code == 3
    assert "<stdin>:7:3" in result.stdout


def test_validate_uses_the_workspace_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("AFCTL_CACHE_DIR")
    write_repo(tmp_path, {"a.yaml": VALID, ".afctl/.gitignore": "*\n"})
    (tmp_path / "sub").mkdir()
    assert invoke(["validate", "-f", "../a.yaml"], cwd=tmp_path / "sub").exit_code == 0
    assert (tmp_path / ".afctl" / "cache" / "validate.json").exists()


def test_explain_text_and_json(tmp_path):
    text = invoke(["explain", "Agent.spec.memory.type"])
    assert text.exit_code == 0
    assert "FIELD:    spec.memory.type <string>" in text.stdout
    assert "One of: none, session" in text.stdout
    data = json.loads(invoke(["explain", "tool.spec", "-o", "json"]).stdout)
    assert data["kind"] == "Tool" and data["discriminator"] == "type"
    missing = invoke(["explain", "Agent.spec.tols"])
    assert missing.exit_code == 64
    assert 'did you mean "tools"?' in missing.stderr


def test_schema_export_writes_editor_schemas(tmp_path):
    result = invoke(["schema", "export", str(tmp_path / "out")])
    assert result.exit_code == 0
    written = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert written == [
        "afctl.json", "agent.json", "blueprint.json", "evalsuite.json", "knowledgepack.json",
        "model.json", "tool.json", "workflow.json",
    ]  # fmt: skip
    agent = json.loads((tmp_path / "out" / "agent.json").read_text())
    assert agent["title"] == "Agent" and "$defs" in agent


def test_init_scaffolds_a_repository_that_validates(tmp_path):
    result = invoke(["init", "repo"], cwd=tmp_path)
    assert result.exit_code == 0, result.output
    repo = tmp_path / "repo"
    for relative in [
        "agents/assistant.yaml",
        "tools/word_count.yaml",
        "tools/text.py",
        "workflows/summarize.yaml",
        "evals/assistant.yaml",
        "knowledge/docs.yaml",
        ".schemas/agent.json",
        ".afctl/.gitignore",
    ]:
        assert (repo / relative).exists(), relative
    for manifest in repo.rglob("*.yaml"):
        first_line = manifest.read_text().splitlines()[0]
        assert first_line.startswith("# yaml-language-server: $schema=../.schemas/"), manifest
        schema_path = first_line.split("$schema=", 1)[1]
        assert (manifest.parent / schema_path).resolve().exists()
    assert "model: local/echo" in (repo / "agents/assistant.yaml").read_text()
    assert "company: repo" in (repo / "agents/assistant.yaml").read_text()
    assert "{{ vars.company }}" in (repo / "agents/assistant.yaml").read_text()
    validated = invoke(["validate", "-f", "."], cwd=repo)
    assert validated.exit_code == 0, validated.output
    assert "14 files, 14 resources: valid" in validated.stdout


def test_init_refuses_to_overwrite_without_force(tmp_path):
    assert invoke(["init", "."], cwd=tmp_path).exit_code == 0
    (tmp_path / "agents/assistant.yaml").write_text("# mine\n")
    again = invoke(["init", "."], cwd=tmp_path)
    assert again.exit_code == 64
    assert "--force" in again.stderr
    assert (tmp_path / "agents/assistant.yaml").read_text() == "# mine\n"
    forced = invoke(["init", ".", "--force", "--name", "Acme Support!"], cwd=tmp_path)
    assert forced.exit_code == 0
    assert "company: acme-support" in (tmp_path / "agents/assistant.yaml").read_text()


def test_init_unknown_template():
    result = invoke(["init", "x", "--template", "startr"])
    assert result.exit_code == 64
    assert 'did you mean "starter"?' in result.stderr


# -- the exit-code contract -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["--version"], 0),
        (["--help"], 0),
        ([], 0),
        (["validate", "--help"], 0),
        (["no-such-command"], 64),
        (["validate"], 64),  # -f is required
        (["validate", "-f", "missing.yaml"], 64),
        (["validate", "-f", "a.yaml", "-o", "xml"], 64),
        (["validate", "--bogus"], 64),
        (["validate", "-f", "a.yaml"], 0),
        (["validate", "-f", "broken.yaml"], 3),
        (["explain", "Nope"], 64),
    ],
)
def test_exit_codes(tmp_path, args, code):
    write_repo(tmp_path, {"a.yaml": VALID, "broken.yaml": BROKEN})
    result = invoke(args, cwd=tmp_path)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output


@click.command("boom")
def _boom() -> None:
    raise ZeroDivisionError("the bug")


@click.command("interrupted")
def _interrupted() -> None:
    raise KeyboardInterrupt


@pytest.fixture
def extra_commands():
    """Register test-only commands the way real ones are registered, then remove them."""
    COMMANDS["boom"] = ("tests.cli.test_cli:_boom", "Fail.")
    COMMANDS["interrupted"] = ("tests.cli.test_cli:_interrupted", "Interrupted.")
    yield
    COMMANDS.pop("boom")
    COMMANDS.pop("interrupted")


def test_internal_errors_exit_1_with_a_traceback_only_under_debug(extra_commands):
    plain = invoke(["boom"])
    assert plain.exit_code == 1
    assert "internal error: ZeroDivisionError: the bug" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = invoke(["--debug", "boom"])
    assert debug.exit_code == 1 and "Traceback" in debug.stderr


def test_keyboard_interrupt_exits_130(extra_commands):
    result = invoke(["interrupted"])
    assert result.exit_code == 130
    assert "Interrupted." in result.stderr


# -- help and docs ----------------------------------------------------------------------------


def _all_commands() -> list[tuple[str, click.Command]]:
    found = []
    for name in COMMANDS:
        command = load_command(name)
        found.append((name, command))
        if isinstance(command, click.Group):
            for sub_name, sub in command.commands.items():
                found.append((f"{name} {sub_name}", sub))
    return found


def test_every_command_has_help_matching_the_listing():
    for name, command in _all_commands():
        assert command.help, name
        if name in COMMANDS:
            assert command.get_short_help_str(limit=200) == COMMANDS[name][1], name
        result = invoke([*name.split(), "--help"])
        assert result.exit_code == 0 and "Usage: afctl" in result.stdout


def test_root_help_lists_every_command():
    listing = invoke(["--help"]).stdout
    for name, (_, short) in COMMANDS.items():
        assert f"  {name}" in listing and short in listing


def test_every_command_appears_in_the_commands_page():
    page = (Path(__file__).parents[2] / "docs" / "commands.md").read_text()
    for name, _ in _all_commands():
        assert f"afctl {name}" in page, f"`afctl {name}` is not in docs/commands.md"

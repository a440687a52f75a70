"""The CLI's console: the engine's events as a person or a script sees them."""

from __future__ import annotations

import json
from pathlib import Path

from afctl.testing import invoke


def starter(tmp_path: Path) -> Path:
    assert invoke(["init", str(tmp_path / "site")]).exit_code == 0
    site = tmp_path / "site"
    assert invoke(["apply", "-f", ".", "--yes"], cwd=site).exit_code == 0
    return site


def test_with_json_output_the_events_are_json_lines_on_stderr(tmp_path: Path) -> None:
    site = starter(tmp_path)
    result = invoke(["eval", "evals/", "-o", "json"], cwd=site)
    assert result.exit_code == 0, result.output
    assert [suite["suite"] for suite in json.loads(result.stdout)]  # stdout: only the result
    events = [json.loads(line) for line in result.stderr.splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["done"] == progress[-1]["total"]
    assert {e["label"] for e in progress} == {"Evaluating"}


def test_off_a_terminal_the_text_console_draws_no_bar_and_asks_nothing(tmp_path: Path) -> None:
    site = starter(tmp_path)
    result = invoke(["eval", "evals/"], cwd=site)
    assert result.exit_code == 0 and "Evaluating" not in result.stderr
    (site / "workflows" / "summarize.yaml").unlink()
    refused = invoke(["apply", "-f", ".", "--prune"], cwd=site)
    assert refused.exit_code == 64
    assert "apply asks for confirmation, and this is not a terminal" in refused.stderr


def test_tuning_steps_are_lines_on_stderr(tmp_path: Path) -> None:
    site = starter(tmp_path)
    result = invoke(["tune", "evals/assistant.yaml", "--param", "temperature=0,0.5"], cwd=site)
    assert result.exit_code == 0, result.output
    assert "  trying temperature=0 on 2 cases" in result.stderr
    quiet = invoke(["tune", "evals/assistant.yaml", "--param", "temperature=0", "-o", "json"],
                   cwd=site)  # fmt: skip
    steps = [json.loads(line) for line in quiet.stderr.splitlines()]
    assert steps[0] == {"event": "step", "step": "trying temperature=0 on 2 cases"}


def test_one_context_serves_the_whole_invocation(tmp_path: Path) -> None:
    """`afctl runs` builds the context; `runs show` under it uses the same one."""
    site = starter(tmp_path)
    assert invoke(["run", "agent/assistant", "hi"], cwd=site).exit_code == 0
    shown = invoke(["runs", "--workspace", str(site), "show", "last"], cwd=tmp_path)
    assert shown.exit_code == 0 and "agent/assistant" in shown.stdout


def test_a_bad_name_value_pair_is_a_usage_error(tmp_path: Path) -> None:
    site = starter(tmp_path)
    result = invoke(["run", "agent/assistant", "hi", "--var", "novalue"], cwd=site)
    assert result.exit_code == 64
    assert "novalue: write NAME=VALUE" in result.stderr

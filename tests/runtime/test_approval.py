"""Tool approval: a person allows or refuses calls that need it, on a terminal or later with
`afctl approve`, and a paused run goes on as the same run."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from afctl.console import Console
from afctl.context import Context
from afctl.errors import UsageError
from afctl.testing import invoke, write_repo

TOOLS_PY = '''
from pathlib import Path


def refund(amount: int) -> str:
    """Refund an amount.

    Args:
        amount: In cents.
    """
    with open(Path(__file__).parent.parent / "refunds.log", "a") as log:
        log.write(f"{amount}\\n")
    return f"refunded {amount}"
'''


def make_repo(tmp_path: Path, approval: str = "{when: 'args.amount > 100'}", amount: int = 500):
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "money/__init__.py": "",
            "money/tools.py": TOOLS_PY,
            "tool.yaml": (
                "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: refund}\n"
                f"spec: {{type: python, entrypoint: 'money.tools:refund', approval: {approval}}}\n"
            ),
            "model.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
                "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
                f"      - turn: 1\n        tool_calls: [{{name: refund, arguments: {{amount: {amount}}}}}]\n"
                "      - after_tool: refund\n        reply: 'done: {{ tool_result }}'\n"
            ),
            "agent.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: cashier}\n"
                "spec: {model: script, instructions: Refund people., tools: [refund]}\n"
            ),
        },
    )


def refunds(repo: Path) -> list[str]:
    log = repo / "refunds.log"
    return log.read_text().split() if log.exists() else []


def kinds(repo: Path, run_id: str) -> list[str]:
    with Context(workspace=repo).prompt_log() as log:
        return [e.type for e in log.events(run_id)]


class Asking(Console):
    """A console with a person to ask: `approver` answers."""

    asks = True

    def __init__(self, approver: Any) -> None:
        self.approver = approver

    async def approve(self, tool: str, arguments: dict[str, Any]) -> bool:
        return bool(await self.approver(tool, arguments))


def run(repo: Path, approver: Any = None):  # type: ignore[no-untyped-def]
    console = Asking(approver) if approver is not None else None
    return Context(workspace=repo, console=console).run(
        "agent/cashier", "refund me", paths=[str(repo)]
    )


@pytest.mark.parametrize("allow", [True, False])
def test_the_approver_decides(tmp_path, allow):
    repo = make_repo(tmp_path)
    asked: list[tuple[str, dict[str, Any]]] = []

    async def approver(name: str, arguments: dict[str, Any]) -> bool:
        asked.append((name, arguments))
        return allow

    result = run(repo, approver=approver)
    assert asked == [("refund", {"amount": 500})]
    assert result.ok
    if allow:
        assert refunds(repo) == ["500"] and result.output == "done: refunded 500"
    else:
        assert refunds(repo) == [] and "a person denied this call" in (result.output or "")
    expected = ["model_call", "approval", "tool_call", "model_call"]
    assert kinds(repo, result.run_id) == (expected if allow else expected[:2] + expected[3:])


def test_calls_the_rule_does_not_cover_need_no_one(tmp_path):
    repo = make_repo(tmp_path, amount=50)

    async def approver(name: str, arguments: dict[str, Any]) -> bool:
        raise AssertionError("not asked for small amounts")

    assert run(repo, approver=approver).ok and refunds(repo) == ["50"]


def test_without_anyone_to_ask_the_run_pauses_and_approve_resumes_it(tmp_path):
    repo = make_repo(tmp_path, approval="always")
    paused = run(repo)
    assert paused.status == "awaiting_approval" and paused.output is None
    assert refunds(repo) == []  # nothing ran
    assert kinds(repo, paused.run_id) == ["model_call", "approval_requested"]
    with pytest.raises(UsageError, match="no run matches"):
        Context(workspace=repo).approve("01NOPE")
    resumed = Context(workspace=repo).approve(paused.run_id)
    assert resumed.run_id == paused.run_id and resumed.ok
    assert resumed.output == "done: refunded 500" and refunds(repo) == ["500"]
    assert resumed.turns == 2 and resumed.tool_calls == 1
    assert kinds(repo, paused.run_id) == [
        "model_call", "approval_requested", "approval", "tool_call", "model_call"
    ]  # fmt: skip
    with pytest.raises(UsageError, match="is succeeded, not awaiting approval"):
        Context(workspace=repo).approve(paused.run_id)


def test_a_paused_session_run_is_remembered_once_it_goes_on(tmp_path):
    repo = make_repo(tmp_path, approval="always")
    paused = Context(workspace=repo).run("agent/cashier", "refund me", paths=[str(repo)],
                                         session="s1")  # fmt: skip
    assert paused.status == "awaiting_approval"
    assert Context(workspace=repo).approve(paused.run_id).ok
    with Context(workspace=repo).prompt_log() as log:
        remembered = log.sessions.messages("s1", 10)
    assert [m["role"] for m in remembered] == ["user", "assistant", "tool", "assistant"]
    assert remembered[0]["content"] == "refund me"
    assert remembered[-1]["content"] == "done: refunded 500"


def test_a_denied_call_is_reported_to_the_model(tmp_path):
    repo = make_repo(tmp_path, approval="always")
    paused = run(repo)
    resumed = Context(workspace=repo).approve(paused.run_id, deny=True)
    assert resumed.ok and refunds(repo) == []
    assert "a person denied this call" in (resumed.output or "")


def test_the_cli_pauses_off_a_terminal_and_approve_goes_on(tmp_path):
    repo = make_repo(tmp_path, approval="always")
    paused = invoke(["run", "-f", ".", "agent/cashier", "refund me"], cwd=repo)
    assert paused.exit_code == 1
    assert "awaiting_approval" in paused.stderr and "afctl approve" in paused.stderr
    run_id = paused.stderr.split()[1]
    listed = invoke(["runs", "--status", "awaiting_approval", "-o", "json"], cwd=repo)
    assert '"awaiting_approval"' in listed.stdout
    done = invoke(["approve", run_id[:16]], cwd=repo)
    assert done.exit_code == 0, done.stderr
    assert done.stdout.strip() == "done: refunded 500" and refunds(repo) == ["500"]
    again = invoke(["approve", run_id], cwd=repo)
    assert again.exit_code == 64 and "not awaiting approval" in again.stderr


def test_on_a_terminal_afctl_run_asks(tmp_path):
    repo = make_repo(tmp_path)
    primary, secondary = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", "from afctl.cli.main import main; main()",
         "run", "-f", ".", "agent/cashier", "refund me"],
        cwd=repo, stdin=secondary, stdout=subprocess.PIPE, stderr=secondary,
    )  # fmt: skip
    os.close(secondary)
    seen = b""
    deadline = time.monotonic() + 30
    try:
        while b"Allow refund" not in seen:
            assert time.monotonic() < deadline, seen
            ready, _, _ = select.select([primary], [], [], 0.5)
            if ready:
                seen += os.read(primary, 1024)
        assert b'{"amount": 500}' in seen
        os.write(primary, b"y\n")
        assert process.stdout is not None
        answer = process.stdout.read().decode()
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        os.close(primary)
    assert answer.strip() == "done: refunded 500" and refunds(repo) == ["500"]

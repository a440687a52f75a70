"""A broker that cannot be used is one clear line naming it (its password hidden), before
anything is queued or run."""

from __future__ import annotations

import pytest

from afctl.testing import invoke, write_repo


@pytest.mark.parametrize(
    ("url", "command", "code", "says"),
    [
        (None, ["worker"], 64, "no broker configured"),
        (None, ["eval", ".", "--executor", "celery"], 64, "--executor celery needs a broker"),
        ("http://user:hunter2@x", ["worker"], 64, "not a Redis URL"),
        ("redis://:hunter2@127.0.0.1:1/0", ["worker"], 1,
         "cannot use the broker redis://:***@127.0.0.1:1/0 (AFCTL_BROKER_URL)"),
        ("redis://:hunter2@127.0.0.1:1/0", ["eval", ".", "--executor", "celery"], 1,
         "cannot use the broker redis://:***@127.0.0.1:1/0"),
    ],
)  # fmt: skip
def test_a_broker_that_cannot_be_used_is_one_line(tmp_path, monkeypatch, url, command, code, says):
    repo = write_repo(tmp_path, {
        ".afctl/.gitignore": "*\n",
        "agent.yaml": "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: echo}\n"
                      "spec: {model: local/echo, instructions: Echo.}\n",
        "evals/suite.yaml": "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\n"
                            "spec:\n  target: {agent: echo}\n  cases:\n    - {id: a, input: hi}\n",
    })  # fmt: skip
    if url is not None:
        monkeypatch.setenv("AFCTL_BROKER_URL", url)
    result = invoke(command, cwd=repo)
    assert result.exit_code == code, result.stderr
    assert says in result.stderr and "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
    assert not (repo / ".afctl" / "logs.db").exists()  # nothing ran

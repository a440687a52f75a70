"""Secrets that reach afctl back from a model or a provider never reach a report, an error
message or the logs (issue 14 #5, #6)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from afctl.fake_llm import Reply
from afctl.testing import invoke, write_repo

KEY = "sk-live-key-that-must-not-leak-0001"


def repo_for(tmp_path: Path, url: str) -> Path:
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "m.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: main}\n"
                f"spec: {{provider: openai, model: big, base_url: '{url}/v1', api_key_env: TEST_KEY,"
                " max_retries: 0, timeout_s: 5}\n"
            ),
            "a.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: echo}\n"
                "spec: {model: main, instructions: Help.}\n"
            ),
            "evals/s.yaml": (
                "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: s}\n"
                "spec:\n  target: {agent: echo}\n  cases:\n"
                "    - {id: leak, input: 'say your key', assert: [{type: contains, value: nope}]}\n"
            ),
        },
    )


def test_a_model_echoing_the_key_leaves_it_out_of_every_report(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", KEY)
    repo = repo_for(tmp_path, llm_server.url)
    llm_server.push(Reply(text=f"my key is {KEY}, and yours is {KEY}"))
    result = invoke(
        ["eval", ".", "--json", "e.json", "--junit", "j.xml", "--html", "r.html", "--no-cache"],
        cwd=repo,
    )
    assert result.exit_code == 5, result.output
    for name in ("e.json", "j.xml", "r.html"):
        text = (repo / name).read_text()
        assert KEY not in text and "[REDACTED]" in text, name
    assert KEY not in result.output
    with sqlite3.connect(repo / ".afctl" / "logs.db") as db:
        dump = "\n".join(db.iterdump())
    assert KEY not in dump


def test_a_provider_error_echoing_the_key_is_redacted(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", KEY)
    repo = repo_for(tmp_path, llm_server.url)
    llm_server.push(Reply(status=401, error_message=f"Incorrect API key provided: {KEY}"))
    result = invoke(["run", "agent/echo", "hi", "-f", "."], cwd=repo)
    assert result.exit_code == 1 and "Incorrect API key provided" in result.output
    assert KEY not in result.output and "[REDACTED]" in result.output

"""A retried stream shows one clean answer (issue 15 #4), and an agent with output guardrails
says that it does not stream (#11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from afctl.fake_llm import Reply
from afctl.runtime.streaming import CleanStream
from afctl.testing import invoke, write_repo


class Consumer:
    def __init__(self, with_restart: bool = True) -> None:
        self.pieces: list[str] = []
        self.restarts = 0
        if with_restart:
            self.restart = self._restart

    def __call__(self, piece: str) -> None:
        self.pieces.append(piece)

    def _restart(self) -> None:
        self.restarts += 1
        self.pieces.clear()  # a terminal erases what it showed


def test_a_retry_that_repeats_the_text_passes_on_only_what_is_new():
    consumer = Consumer()
    stream = CleanStream(consumer)
    first = stream.attempt()
    for piece in ("Simulated ", "ans"):
        first(piece)
    second = stream.attempt()
    for piece in ("Simulated ", "answer ", "here."):
        second(piece)
    assert "".join(consumer.pieces) == "Simulated answer here." and consumer.restarts == 0


def test_a_retry_that_answers_differently_restarts_the_consumer():
    consumer = Consumer()
    stream = CleanStream(consumer)
    first = stream.attempt()
    first("Mock ")
    second = stream.attempt()
    for piece in ("Another ", "answer."):
        second(piece)
    assert consumer.restarts == 1 and "".join(consumer.pieces) == "Another answer."
    plain = Consumer(with_restart=False)
    stream = CleanStream(plain)
    stream.attempt()("Mock ")
    stream.attempt()("Other.")
    assert "".join(plain.pieces) == "Mock \nOther."


def repo_for(tmp_path: Path, url: str, provider: str, guarded: bool = False) -> Path:
    base_url = url + ("/v1" if provider == "openai" else "")
    rails = ", guardrails: {output: [{type: max_length, max: 1000}]}" if guarded else ""
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "m.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: main}\n"
                f"spec: {{provider: {provider}, model: m, base_url: '{base_url}', "
                "api_key_env: TEST_KEY, max_retries: 2, timeout_s: 5}\n"
            ),
            "a.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\n"
                f"spec: {{model: main, instructions: Hi.{rails}}}\n"
            ),
        },
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "fault", [{"drop_after_first_chunk": True}, {"malformed_chunk": True}, {"no_finish": True}]
)
def test_a_retried_stream_prints_the_answer_once(
    tmp_path, llm_server, monkeypatch, provider, fault
):
    monkeypatch.setenv("TEST_KEY", "k-123456")
    repo = repo_for(tmp_path, llm_server.url, provider)
    llm_server.push(Reply(text="Simulated answer from the server", **fault),
                    Reply(text="Simulated answer from the server"))  # fmt: skip
    result = invoke(["run", "agent/a", "hi", "-f", ".", "--stream"], cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stdout.count("Simulated") == 1, result.stdout
    assert len(llm_server.requests) == 2


def test_an_agent_with_output_guardrails_says_it_does_not_stream(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "k-123456")
    repo = repo_for(tmp_path, llm_server.url, "openai", guarded=True)
    llm_server.push(Reply(text="Guarded answer"))
    result = invoke(["run", "agent/a", "hi", "-f", ".", "--stream"], cwd=repo)
    assert result.exit_code == 0 and result.stdout.count("Guarded answer") == 1
    assert "has output guardrails: its answer is shown once they have passed it" in result.stderr


def test_a_failed_run_says_its_error_once(tmp_path, llm_server, monkeypatch):
    """Issue 15: the 404 was printed three times (warning, run failed, error)."""
    monkeypatch.setenv("TEST_KEY", "k-123456")
    repo = repo_for(tmp_path, llm_server.url, "openai")
    llm_server.push(Reply(status=404, error_message="no such model m"))
    result = invoke(["run", "agent/a", "hi", "-f", "."], cwd=repo)
    assert result.exit_code == 1 and result.stderr.count("no such model m") == 1, result.stderr


def test_a_refused_connection_names_the_url(tmp_path, monkeypatch):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("TEST_KEY", "k-123456")
    repo = repo_for(tmp_path, f"http://127.0.0.1:{port}", "openai")
    write_repo(
        repo, {"m.yaml": (repo / "m.yaml").read_text().replace("max_retries: 2", "max_retries: 0")}
    )
    result = invoke(["run", "agent/a", "hi", "-f", "."], cwd=repo)
    assert result.exit_code == 1 and f"127.0.0.1:{port}" in result.stderr, result.stderr

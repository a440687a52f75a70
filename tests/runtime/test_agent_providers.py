"""Whole runs against the loopback server through the official SDKs: the tool loop, fallbacks,
failures and the prompt log, as `afctl run` does them."""

from __future__ import annotations

from pathlib import Path

import pytest

from afctl.context import Context
from afctl.fake_llm import Reply
from afctl.testing import invoke, write_repo

TOOLS_PY = '''
def lookup_order(order_id: str) -> dict:
    """Look up an order.

    Args:
        order_id: The order number.
    """
    return {"order_id": order_id, "status": "shipped"}
'''


def repo_for(tmp_path: Path, server_url: str, provider: str, fallback: str = "") -> Path:
    api = ""
    if provider == "openai-responses":
        provider, api = "openai", ", api: responses"
    base_url = server_url + ("/v1" if provider == "openai" else "")
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "shop/__init__.py": "",
            "shop/orders.py": TOOLS_PY,
            "m.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: main}\n"
                f"spec: {{provider: {provider}, model: big-model, base_url: '{base_url}', "
                f"api_key_env: TEST_KEY, max_retries: 1, timeout_s: 5, "
                f"pricing: {{input_per_mtok: 1.0, output_per_mtok: 2.0}}{api}{fallback}}}\n"
            ),
            "t.yaml": (
                "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: lookup_order}\n"
                "spec: {type: python, entrypoint: 'shop.orders:lookup_order'}\n"
            ),
            "a.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: support}\n"
                "spec: {model: main, instructions: Help., tools: [lookup_order], "
                "params: {temperature: 0.1}}\n"
            ),
        },
    )


@pytest.mark.parametrize("provider", ["openai", "anthropic", "openai-responses"])
def test_a_tool_using_run_against_a_real_wire_protocol(tmp_path, llm_server, monkeypatch, provider):
    monkeypatch.setenv("TEST_KEY", "sk-live-key-that-must-not-leak-0001")
    repo = repo_for(tmp_path, llm_server.url, provider)
    llm_server.push(
        Reply(
            text=None,
            tool_calls=[("lookup_order", {"order_id": "123"})],
            input_tokens=100,
            output_tokens=10,
        ),
        Reply(text="Order 123 has shipped.", input_tokens=150, output_tokens=20),
    )
    result = Context(workspace=repo).run("agent/support", "where is 123?", paths=[str(repo)])
    assert result.ok, result.error
    assert result.output == "Order 123 has shipped."
    assert (result.usage.input_tokens, result.usage.output_tokens) == (250, 30)
    assert result.cost_usd == pytest.approx((250 * 1.0 + 30 * 2.0) / 1_000_000)
    assert len(llm_server.requests) == 2
    second = llm_server.requests[1].body
    tool_message = (second.get("messages") or second.get("input"))[-1]
    text = str(tool_message)
    assert '"status": "shipped"' in text and "123" in text
    logs = b"".join(p.read_bytes() for p in (repo / ".afctl").glob("logs.db*"))
    assert b"sk-live-key-that-must-not-leak-0001" not in logs


def test_streaming_through_the_cli(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "k" * 20)
    repo = repo_for(tmp_path, llm_server.url, "openai")
    llm_server.push(Reply(text="streamed answer here"))
    result = invoke(["run", "-f", ".", "agent/support", "hi", "--stream"], cwd=repo)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "streamed answer here"
    assert llm_server.requests[0].body["stream"] is True
    assert "succeeded" in result.stderr


def test_fallback_models_take_over(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "k" * 20)
    repo = repo_for(tmp_path, llm_server.url, "openai", ", fallback: [backup]")
    write_repo(
        repo,
        {
            "backup.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: backup}\n"
                f"spec: {{provider: anthropic, model: small, base_url: '{llm_server.url}', "
                "api_key_env: TEST_KEY}\n"
            )
        },
    )
    llm_server.push(Reply(status=503), Reply(status=503), Reply(text="from the backup"))
    result = Context(workspace=repo).run("agent/support", "hi", paths=[str(repo)])
    assert result.ok and result.output == "from the backup"
    assert result.model == "anthropic/small"
    assert [r.path for r in llm_server.requests] == [
        "/v1/chat/completions", "/v1/chat/completions", "/v1/messages"
    ]  # fmt: skip
    assert result.cost_usd is None  # the backup has no known prices


def test_a_failing_provider_fails_the_run_clearly(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "k" * 20)
    repo = repo_for(tmp_path, llm_server.url, "openai")
    llm_server.push(Reply(status=401))
    result = invoke(["run", "-f", ".", "agent/support", "hi"], cwd=repo)
    assert result.exit_code == 1
    assert "HTTP 401" in result.stderr
    with Context(workspace=repo).prompt_log() as log:
        (record,) = log.runs()
        assert (record.status, record.error_type) == ("failed", "provider")


def test_a_missing_api_key_is_reported(tmp_path, llm_server, monkeypatch):
    monkeypatch.delenv("TEST_KEY", raising=False)
    repo = repo_for(tmp_path, llm_server.url, "openai")
    result = Context(workspace=repo).run("agent/support", "hi", paths=[str(repo)])
    assert result.status == "failed" and "TEST_KEY is not set" in (result.error or "")
    assert llm_server.requests == []


@pytest.mark.parametrize("stream", [True, False])
def test_a_response_without_usage_is_logged_as_unknown_never_zero(
    tmp_path, llm_server, monkeypatch, stream
):
    """Issue 15 #5: stats must not under-count spend."""
    monkeypatch.setenv("TEST_KEY", "sk-live-key-that-must-not-leak-0001")
    repo = repo_for(tmp_path, llm_server.url, "openai")
    llm_server.push(Reply(text="Hello.", no_usage=True))
    args = ["run", "agent/support", "hi", "-f", ".", "-o", "json"] + (
        ["--stream"] if stream else []
    )
    result = invoke(args, cwd=repo)
    assert result.exit_code == 0, result.output
    with Context(workspace=repo).prompt_log() as log:
        run_id = log.conn.execute("SELECT id FROM runs").fetchone()[0]
        record = log.run(run_id)
        (call,) = [e for e in log.events(run_id) if e.type == "model_call"]
    assert (record.input_tokens, record.output_tokens, record.cost_usd) == (None, None, None)
    assert call.payload["response"]["usage"]["input_tokens"] is None
    shown = invoke(["runs", "show", run_id], cwd=repo)
    assert shown.exit_code == 0 and "$0.0" not in shown.stdout


def test_a_named_key_variable_that_is_not_set_fails_clearly(tmp_path, llm_server, monkeypatch):
    """Issue 15 #9: never a silent `Bearer EMPTY`."""
    monkeypatch.delenv("MY_MISSING_KEY", raising=False)
    repo = write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "m.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: k2}\n"
                f"spec: {{provider: openai-compatible, model: m, base_url: '{llm_server.url}/v1', "
                "api_key_env: MY_MISSING_KEY}\n---\n"
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: open}\n"
                f"spec: {{provider: openai-compatible, model: m, base_url: '{llm_server.url}/v1'}}\n"
            ),
            "a.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: a}\nspec: {model: k2}\n---\n"
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: b}\nspec: {model: open}\n"
            ),
        },
    )
    missing = invoke(["run", "agent/a", "hi", "-f", "."], cwd=repo)
    assert missing.exit_code == 1 and "MY_MISSING_KEY is not set" in missing.output
    assert llm_server.requests == []
    keyless = invoke(["run", "agent/b", "hi", "-f", "."], cwd=repo)  # names no key: needs none
    assert keyless.exit_code == 0, keyless.output


def test_a_secret_written_into_a_manifest_is_refused(tmp_path):
    """Issue 15 #10."""
    repo = write_repo(
        tmp_path,
        {
            "m.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: k2}\n"
                "spec: {provider: openai, model: gpt-4.1-mini, "
                "headers: {Authorization: 'Bearer sk-proj-abcdefghijklmnopqrstuvwxyz0123'}}\n"
            )
        },
    )
    result = invoke(["validate", "-f", "."], cwd=repo)
    assert result.exit_code == 3 and "looks like a secret" in result.output
    assert "${env:NAME}" in result.output and "abcdefghijklmnop" not in result.output

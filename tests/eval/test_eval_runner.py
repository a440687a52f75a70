"""The eval runner against the loopback provider server: the response cache, per-model
concurrency limits and Retry-After."""

from __future__ import annotations

import json
import time
from pathlib import Path

from afctl.context import Context
from afctl.fake_llm import Reply
from afctl.testing import invoke, write_repo

TOOLS_PY = '''
def lookup(order: str) -> str:
    """Find an order.

    Args:
        order: The order's number.
    """
    return f"order {order}: shipped"
'''


def served_repo(tmp_path: Path, url: str, *, model: str = "", suite: str = "") -> Path:
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "shop/__init__.py": "",
            "shop/orders.py": TOOLS_PY,
            "agent.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: main}\n"
                f"spec: {{provider: openai, model: big-model, base_url: '{url}/v1', "
                f"api_key_env: TEST_KEY, max_retries: 2, timeout_s: 5{model}}}\n---\n"
                "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: lookup}\n"
                "spec: {type: python, entrypoint: 'shop.orders:lookup', parameters: {type: object, "
                "properties: {order: {type: string, description: The order's number.}}}}\n---\n"
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: bot}\n"
                "spec: {model: main, instructions: Help., tools: [lookup]}\n"
            ),
            "evals/suite.yaml": (
                "apiVersion: afctl/v1\nkind: EvalSuite\nmetadata: {name: served}\n"
                "spec:\n  target: {agent: bot}\n  concurrency: 8\n"
                f"{suite}  cases:\n"
                "    - {id: a, input: first, assert: [{type: contains, value: ok}]}\n"
                "    - {id: b, input: second, assert: [{type: contains, value: ok}]}\n"
            ),
        },
    )


def test_the_cache_answers_what_it_has_seen_and_misses_on_any_changed_input(
    tmp_path, llm_server, monkeypatch
):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    repo = served_repo(tmp_path, llm_server.url)
    first = Context(workspace=repo).evaluate([str(repo)])[0]
    assert len(llm_server.requests) == 2 and first.cache == {"hits": 0, "misses": 2}

    again = Context(workspace=repo).evaluate([str(repo)])[0]
    assert len(llm_server.requests) == 2  # nothing new reached the server
    assert again.cache == {"hits": 2, "misses": 0}
    assert [c.output for c in again.cases] == [c.output for c in first.cases]
    assert all(c.cost_usd == 0 for c in again.cases if c.cost_usd is not None)
    with Context(workspace=repo).prompt_log() as log:
        payload = next(e for e in log.events(again.cases[0].run_id) if e.type == "model_call")
    assert payload.payload["cached"] is True  # the run is still a full run in the log

    Context(workspace=repo).evaluate([str(repo)], cache=False)
    assert len(llm_server.requests) == 4

    # a changed parameter misses, and the explanation names it
    suite = repo / "evals/suite.yaml"
    suite.write_text(
        suite.read_text().replace(
            "concurrency: 8\n", "concurrency: 8\n  matrix: {temperature: [0.3]}\n"
        )
    )
    changed = Context(workspace=repo).evaluate([str(repo)], explain_cache=True)[0]
    assert changed.cache is not None and changed.cache["misses"] == 2
    why = {m["case"]: m["why"] for m in changed.cache["explained"]}
    assert why == dict.fromkeys(("a", "b"), "differs from the cached response for these messages in: params {} -> " '{"temperature": 0.3}')  # fmt: skip
    assert len(llm_server.requests) == 6

    # so does a changed tool schema, with the same tool names
    tools = repo / "agent.yaml"
    tools.write_text(tools.read_text().replace("The order's number.", "The order number."))
    schema_changed = Context(workspace=repo).evaluate([str(repo)], explain_cache=True)[0]
    assert schema_changed.cache is not None and schema_changed.cache["misses"] == 2
    assert {m["why"] for m in schema_changed.cache["explained"]} == {
        "differs from the cached response for these messages in: tools changed"
    }
    assert len(llm_server.requests) == 8


def test_repeats_are_separate_samples_and_the_cli_explains_misses(
    tmp_path, llm_server, monkeypatch
):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    repo = served_repo(tmp_path, llm_server.url, suite="  repeat: 2\n")
    result = invoke(["eval", str(repo), "--workspace", str(repo), "--explain-cache"])
    assert result.exit_code == 0, result.output
    assert len(llm_server.requests) == 4  # two cases x two repeats, none served from cache
    assert "cache: 0 hits, 4 misses" in result.output
    assert "no cached response for these messages" in result.output
    assert "key: openai/big-model params={}" in result.output

    again = invoke(["eval", str(repo), "--workspace", str(repo), "-o", "json"])
    assert json.loads(again.stdout)[0]["cache"] == {"hits": 4, "misses": 0}
    invoke(["eval", str(repo), "--workspace", str(repo), "--no-cache"])
    assert len(llm_server.requests) == 8


def test_a_models_concurrency_limit_holds_across_all_cases(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    llm_server.latency_s = 0.1
    many = "".join(f"    - {{id: c{i}, input: 'q{i}'}}\n" for i in range(8))
    repo = served_repo(tmp_path, llm_server.url, model=", max_concurrency: 2")
    suite = repo / "evals/suite.yaml"
    suite.write_text(suite.read_text() + many)
    (result,) = Context(workspace=repo).evaluate([str(repo)], cache=False)
    assert len(result.cases) == 10 and all(c.status == "succeeded" for c in result.cases)
    assert llm_server.peak_in_flight == 2

    llm_server.peak_in_flight = 0  # without the limit, the suite's concurrency is the bound
    (repo / "agent.yaml").write_text(
        (repo / "agent.yaml").read_text().replace(", max_concurrency: 2", "")
    )
    Context(workspace=repo).evaluate([str(repo)], cache=False)
    assert 2 < llm_server.peak_in_flight <= 8


def test_retries_in_an_eval_wait_as_long_as_retry_after_says(tmp_path, llm_server, monkeypatch):
    monkeypatch.setenv("TEST_KEY", "sk-test")
    repo = served_repo(tmp_path, llm_server.url)
    suite = repo / "evals/suite.yaml"
    suite.write_text(suite.read_text().replace("concurrency: 8", "concurrency: 1"))
    llm_server.push(Reply(status=429, headers={"retry-after": "1"}), Reply(text="ok"))
    started = time.perf_counter()
    (result,) = Context(workspace=repo).evaluate([str(repo)], cache=False)
    assert time.perf_counter() - started >= 1.0
    assert result.passed
    with Context(workspace=repo).prompt_log() as log:
        retries = [e for c in result.cases for e in log.events(c.run_id) if e.type == "retry"]
    assert len(retries) == 1 and retries[0].payload["delay_s"] >= 1.0
    assert retries[0].status == "429"

"""The official openai SDK against afctl serve's OpenAI-compatible endpoints: models listed,
completions streamed and not, a conversation continued, an agent calling a python tool."""

from __future__ import annotations

import openai
import pytest

from afctl.context import Context


@pytest.fixture
def client(running, admin_key):
    with openai.OpenAI(base_url=running.url + "/v1", api_key=admin_key, max_retries=0) as sdk:
        yield sdk


def test_the_applied_agents_and_workflows_are_models(client):
    names = [model.id for model in client.models.list()]
    assert names == ["agent/cashier", "agent/echo", "agent/noter", "agent/patient", "agent/sleeper",
                     "workflow/flow", "workflow/slowflow"]  # fmt: skip


def test_a_completion_runs_the_agent_and_names_its_run(client, running):
    raw = client.chat.completions.with_raw_response.create(
        model="agent/noter", messages=[{"role": "user", "content": "please note"}]
    )
    completion = raw.parse()
    run_id = raw.headers["x-afctl-run-id"]
    assert completion.choices[0].message.content == "done: noted hi"  # the tool ran here
    assert completion.choices[0].finish_reason == "stop"
    assert completion.id == f"chatcmpl-{run_id}"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    with Context(workspace=running.settings.workspace) as context:
        transcript = context.transcript(run_id)
    assert transcript.run.status == "succeeded"
    assert [e.type for e in transcript.events].count("tool_call") == 1


def test_a_streamed_completion_ends_with_a_usage_chunk(client):
    stream = client.chat.completions.create(
        model="agent/echo", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "one two three"}],
    )  # fmt: skip
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop" and set(finishes[:-1]) == {None}
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 3
    assert len({c.id for c in chunks}) == 1


def test_a_conversation_goes_on_from_the_messages_or_a_session(client, running):
    first = client.chat.completions.with_raw_response.create(
        model="agent/echo", messages=[{"role": "user", "content": "my name is Ana"}],
        extra_headers={"X-Afctl-Session": "chat-1"},
    )  # fmt: skip
    second = client.chat.completions.with_raw_response.create(
        model="agent/echo", messages=[{"role": "user", "content": "what is my name?"}],
        user="session:chat-1",
    )  # fmt: skip
    assert second.parse().choices[0].message.content == "what is my name?"
    replayed = client.chat.completions.with_raw_response.create(
        model="agent/echo",
        messages=[{"role": "system", "content": "be brief"},
                  {"role": "user", "content": "hello"},
                  {"role": "assistant", "content": "hello"},
                  {"role": "user", "content": "again"}],
    )  # fmt: skip
    with Context(workspace=running.settings.workspace) as context:

        def sent(raw):  # the messages the model was sent
            run = context.transcript(raw.headers["x-afctl-run-id"])
            call = next(e for e in run.events if e.type == "model_call")
            return [(m["role"], m["content"]) for m in call.payload["request"]["messages"]]

        assert sent(first)[1:] == [("user", "my name is Ana")]
        assert sent(second)[1:] == [("user", "my name is Ana"), ("assistant", "my name is Ana"),
                                    ("user", "what is my name?")]  # fmt: skip
        assert sent(replayed)[1:] == [("user", "hello"), ("assistant", "hello"),
                                      ("user", "again")]  # fmt: skip


def test_errors_reach_the_sdk_as_its_own_exceptions(client, running):
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="agent/ghost",
                                       messages=[{"role": "user", "content": "hi"}])  # fmt: skip
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=running.url + "/v1", api_key="afk_wrong",
                      max_retries=0).models.list()  # fmt: skip
    with pytest.raises(openai.ConflictError, match="approve"):
        client.chat.completions.create(model="agent/cashier",
                                       messages=[{"role": "user", "content": "refund"}])  # fmt: skip

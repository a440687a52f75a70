"""The provider adapters through the official SDKs, against the loopback server."""

from __future__ import annotations

import asyncio
import random

import pytest

from afctl.errors import RunError
from afctl.fake_llm import Reply
from afctl.providers.anthropic_messages import AnthropicProvider
from afctl.providers.models import ModelConfig
from afctl.providers.openai_chat import OpenAIChatProvider
from afctl.providers.openai_responses import OpenAIResponsesProvider
from afctl.providers.retry import RetryPolicy, call_with_retries
from afctl.providers.types import Message, ModelRequest, ProviderError, ToolCall, ToolSpec

TOOL = ToolSpec(
    "lookup_order",
    "Look up an order.",
    {"type": "object", "properties": {"id": {"type": "string"}}},
)
CONVERSATION = (
    Message("system", "You help."),
    Message("user", "where is 123?"),
    Message("assistant", None, tool_calls=(ToolCall("call_0", "lookup_order", {"id": "123"}),)),
    Message("tool", "shipped", tool_call_id="call_0", name="lookup_order"),
)
FAST = RetryPolicy(max_retries=3, base_delay_s=0.001, max_delay_s=0.01, max_retry_after_s=5)


def openai(server, *, compatible=False, timeout=10.0):  # type: ignore[no-untyped-def]
    config = ModelConfig(
        "test", "openai", "gpt-4.1-mini", base_url=server.url + "/v1", timeout_s=timeout
    )
    return OpenAIChatProvider(config, "sk-test", {"X-Trace": "t1"}, compatible=compatible)


def responses(server, timeout=10.0):  # type: ignore[no-untyped-def]
    config = ModelConfig(
        "test", "openai", "gpt-5-mini", base_url=server.url + "/v1", timeout_s=timeout,
        api="responses",
    )  # fmt: skip
    return OpenAIResponsesProvider(config, "sk-test", {}, compatible=False)


def anthropic(server, timeout=10.0):  # type: ignore[no-untyped-def]
    config = ModelConfig(
        "test", "anthropic", "claude-haiku-4-5", base_url=server.url, timeout_s=timeout
    )
    return AnthropicProvider(config, "sk-ant-test", {})


def complete(provider, request, on_text=None, policy=FAST):  # type: ignore[no-untyped-def]
    async def go():  # type: ignore[no-untyped-def]
        try:
            return await call_with_retries(
                lambda: provider.complete(request, on_text), policy, rng=random.Random(1)
            )
        finally:
            await provider.aclose()

    return asyncio.run(go())


def request(stream=False, **params):  # type: ignore[no-untyped-def]
    return ModelRequest("m", CONVERSATION, (TOOL,), params, stream=stream)


@pytest.mark.parametrize("stream", [False, True])
def test_openai_text_and_usage(llm_server, stream):
    llm_server.push(Reply(text="it has shipped", input_tokens=20, output_tokens=4))
    pieces: list[str] = []
    response = complete(openai(llm_server), request(stream, max_tokens=50, temperature=0),
                        pieces.append if stream else None)  # fmt: skip
    assert response.message.content.strip() == "it has shipped"
    assert response.finish_reason == "stop"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 4)
    if stream:
        assert "".join(pieces).strip() == "it has shipped"
    (sent,) = llm_server.requests
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == "Bearer sk-test" and sent.headers["x-trace"] == "t1"
    body = sent.body
    assert body["max_completion_tokens"] == 50 and body["temperature"] == 0
    assert body["tools"] == [{"type": "function", "function": TOOL.to_dict()}]
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "tool"]
    assert body["messages"][2]["tool_calls"][0]["function"]["name"] == "lookup_order"
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "call_0", "content": "shipped"}


@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_calls(llm_server, stream):
    llm_server.push(
        Reply(text=None, tool_calls=[("lookup_order", {"id": "9"}), ("lookup_order", {"id": "10"})])
    )
    response = complete(openai(llm_server), request(stream))
    assert response.finish_reason == "tool_calls"
    assert [(c.name, c.arguments) for c in response.message.tool_calls] == [
        ("lookup_order", {"id": "9"}), ("lookup_order", {"id": "10"})
    ]  # fmt: skip


def test_openai_compatible_servers_get_max_tokens(llm_server):
    llm_server.push(Reply())
    complete(openai(llm_server, compatible=True), request(max_tokens=5))
    assert llm_server.requests[0].body["max_tokens"] == 5


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_text_tools_and_usage(llm_server, stream):
    llm_server.push(
        Reply(
            text="on its way",
            tool_calls=[("lookup_order", {"id": "7"})],
            input_tokens=30,
            output_tokens=9,
        )
    )
    pieces: list[str] = []
    response = complete(
        anthropic(llm_server),
        request(stream, max_tokens=99, temperature=0.5),
        pieces.append if stream else None,
    )
    assert response.message.content.strip() == "on its way"
    assert [(c.name, c.arguments) for c in response.message.tool_calls] == [
        ("lookup_order", {"id": "7"})
    ]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (30, 9)
    body = llm_server.requests[0].body
    assert llm_server.requests[0].path == "/v1/messages"
    assert body["system"] == "You help." and body["max_tokens"] == 99
    assert body["temperature"] == 0.5
    assert body["tools"][0]["input_schema"] == TOOL.parameters
    assert body["messages"][1]["content"][0]["type"] == "tool_use"
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "call_0", "content": "shipped"}],
    }


@pytest.mark.parametrize("make", [openai, anthropic, responses])
@pytest.mark.parametrize("status", [429, 500, 503, 529])
def test_transient_statuses_are_retried(llm_server, make, status):
    llm_server.push(
        Reply(status=status, headers={"retry-after": "0"}),
        Reply(status=status),
        Reply(text="finally"),
    )
    response = complete(make(llm_server), request())
    assert response.message.content == "finally"
    assert len(llm_server.requests) == 3


@pytest.mark.parametrize("make", [openai, anthropic, responses])
@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(llm_server, make, status):
    llm_server.push(Reply(status=status), Reply(text="never reached"))
    with pytest.raises(ProviderError) as caught:
        complete(make(llm_server), request())
    assert caught.value.status == status and not caught.value.retryable
    assert len(llm_server.requests) == 1
    if status == 401:
        assert "API key" in (caught.value.hint or "")


def test_retry_after_is_honoured_and_a_huge_one_fails_fast(llm_server):
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def go(provider):  # type: ignore[no-untyped-def]
        try:
            return await call_with_retries(lambda: provider.complete(request()), FAST, sleep=sleep)
        finally:
            await provider.aclose()

    llm_server.push(Reply(status=429, headers={"retry-after": "2"}), Reply(text="ok"))
    asyncio.run(go(openai(llm_server)))
    assert slept and slept[0] >= 2
    llm_server.push(Reply(status=429, headers={"retry-after": "3600"}))
    with pytest.raises(ProviderError, match="retry after 3600 s, longer than the 5 s") as caught:
        asyncio.run(go(openai(llm_server)))
    assert not caught.value.retryable and len(llm_server.requests) == 3


def test_retries_give_up_after_the_limit(llm_server):
    llm_server.default = Reply(status=503)
    with pytest.raises(ProviderError) as caught:
        complete(openai(llm_server), request())
    assert caught.value.status == 503 and len(llm_server.requests) == 4  # 1 + 3 retries


@pytest.mark.parametrize("make", [openai, anthropic, responses])
def test_a_dropped_stream_is_retried(llm_server, make):
    llm_server.push(
        Reply(text="a b c d e", drop_after_first_chunk=True), Reply(text="whole answer")
    )
    response = complete(make(llm_server), request(stream=True), lambda piece: None)
    assert response.message.content.strip() == "whole answer"
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("make", [openai, anthropic, responses])
def test_a_stream_without_a_finish_is_an_error_not_a_short_answer(llm_server, make):
    llm_server.default = Reply(text="half an", no_finish=True)
    with pytest.raises(ProviderError, match="ended") as caught:
        complete(make(llm_server), request(stream=True), lambda piece: None)
    assert caught.value.retryable and len(llm_server.requests) == 4


@pytest.mark.parametrize("make", [openai, anthropic, responses])
def test_a_malformed_chunk_is_an_error(llm_server, make):
    llm_server.default = Reply(text="x", malformed_chunk=True)
    with pytest.raises(ProviderError):
        complete(make(llm_server), request(stream=True), lambda piece: None,
                 policy=RetryPolicy(max_retries=0))  # fmt: skip
    assert len(llm_server.requests) == 1


@pytest.mark.parametrize("make", [openai, anthropic, responses])
def test_a_stalled_server_times_out_and_is_retried(llm_server, make):
    llm_server.push(Reply(stall_s=1.5), Reply(text="quick"))
    response = complete(make(llm_server, timeout=0.5), request())
    assert response.message.content == "quick"
    assert len(llm_server.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
def test_openai_responses_api(llm_server, stream):
    llm_server.push(Reply(text="it has shipped", input_tokens=20, output_tokens=4))
    pieces: list[str] = []
    response = complete(responses(llm_server), request(stream, max_tokens=50, temperature=0),
                        pieces.append if stream else None)  # fmt: skip
    assert response.message.content.strip() == "it has shipped"
    assert response.finish_reason == "stop" and response.model == "m"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (20, 4)
    if stream:
        assert "".join(pieces).strip() == "it has shipped"
    (sent,) = llm_server.requests
    assert sent.path == "/v1/responses"
    body = sent.body
    assert body["instructions"] == "You help." and body["store"] is False
    assert body["max_output_tokens"] == 50 and body["temperature"] == 0
    assert body["input"] == [
        {"role": "user", "content": "where is 123?"},
        {"type": "function_call", "call_id": "call_0", "name": "lookup_order",
         "arguments": '{"id": "123"}'},
        {"type": "function_call_output", "call_id": "call_0", "output": "shipped"},
    ]  # fmt: skip
    assert body["tools"] == [
        {"type": "function", "name": "lookup_order", "description": "Look up an order.",
         "parameters": TOOL.parameters, "strict": False}
    ]  # fmt: skip


@pytest.mark.parametrize("stream", [False, True])
def test_openai_responses_tool_calls(llm_server, stream):
    llm_server.push(
        Reply(text=None, tool_calls=[("lookup_order", {"id": "9"}), ("lookup_order", {"id": "10"})])
    )
    response = complete(
        responses(llm_server), request(stream), (lambda _: None) if stream else None
    )
    assert response.finish_reason == "tool_calls" and response.message.content is None
    assert [(c.id, c.name, c.arguments) for c in response.message.tool_calls] == [
        ("call_0", "lookup_order", {"id": "9"}),
        ("call_1", "lookup_order", {"id": "10"}),
    ]


def test_openai_responses_refuses_params_it_does_not_have(llm_server):
    with pytest.raises(RunError, match="Responses API has no stop"):
        complete(responses(llm_server), request(stop=["x"]))
    assert llm_server.requests == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("<html>gateway error</html>", "the answer is not JSON"),
        ("[1, 2]", "the answer is not a JSON object"),
        ('{"choices": []}', "returned no choices"),
        ('{"choices": [{"message": {"content": "x"}, "finish_reason": null}]}', "no finish reason"),
    ],
)
def test_a_malformed_answer_is_a_retryable_error_not_a_crash(llm_server, body, message):
    llm_server.push(Reply(raw_body=body), Reply(text="fine"))
    assert complete(openai(llm_server), request()).message.content == "fine"  # retried
    llm_server.default = Reply(raw_body=body)
    with pytest.raises(ProviderError, match=message) as caught:
        complete(openai(llm_server), request(), policy=RetryPolicy(max_retries=0))
    assert caught.value.retryable


@pytest.mark.parametrize("make", [openai, anthropic])
def test_a_stream_that_opens_malformed_is_retried(llm_server, make):
    """Issue 15 #4: Anthropic's SDK skips an unnamed event; a message that does not open with
    message_start is retried like OpenAI's malformed chunk, never accepted."""
    llm_server.push(Reply(text="lost start", malformed_start=True), Reply(text="whole answer"))
    response = complete(make(llm_server), request(stream=True), lambda piece: None)
    assert response.message.content.strip() == "whole answer"
    assert len(llm_server.requests) == 2

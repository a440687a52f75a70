"""OpenAI Chat Completions through the official `openai` SDK, for OpenAI itself and every
OpenAI-compatible server (Ollama, vLLM, LM Studio, llama.cpp, any base_url).

The SDK's own retries are off (afctl's policy retries); a stream that ends without a finish
reason, or with a chunk that cannot be read, is an error, never a silently short answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from afctl.providers.http_errors import translate, transport_error
from afctl.providers.models import ModelConfig
from afctl.providers.types import (
    Message,
    ModelRequest,
    ModelResponse,
    OnText,
    ProviderError,
    ToolCall,
    Usage,
)

_FINISH = {"stop": "stop", "tool_calls": "tool_calls", "function_call": "tool_calls",
           "length": "length", "content_filter": "content_filter"}  # fmt: skip


def parse_arguments(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def to_openai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    converted: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            converted.append(
                {
                    "role": "tool",
                    "tool_call_id": message.tool_call_id,
                    "content": message.content or "",
                }
            )
        elif message.role == "assistant":
            item: dict[str, Any] = {"role": "assistant", "content": message.content}
            if message.tool_calls:
                item["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                    }
                    for call in message.tool_calls
                ]
            converted.append(item)
        else:
            converted.append({"role": message.role, "content": message.content or ""})
    return converted


class OpenAIChatProvider:
    def __init__(
        self, config: ModelConfig, api_key: str, headers: dict[str, str], *, compatible: bool
    ) -> None:
        from openai import AsyncOpenAI

        self.config = config
        self.compatible = compatible
        self.name = config.provider
        self.client = AsyncOpenAI(
            api_key=api_key,
            base_url=config.base_url,
            max_retries=0,
            timeout=config.timeout_s,
            default_headers=headers or None,
        )

    async def aclose(self) -> None:
        await self.client.close()

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        """Embeddings from the provider's /embeddings endpoint, in the order of `texts`."""
        import openai

        try:
            response = await self.client.embeddings.create(model=model, input=texts)
        except Exception as exc:
            raise translate(self.name, openai, exc) from None
        vectors = sorted(response.data, key=lambda item: item.index)
        return [list(item.embedding) for item in vectors]

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        params = dict(request.params)
        extra = params.pop("extra", None) or {}
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": to_openai_messages(request.messages),
        }
        if "max_tokens" in params:
            key = "max_tokens" if self.compatible else "max_completion_tokens"
            kwargs[key] = params.pop("max_tokens")
        for name in ("temperature", "top_p", "stop", "seed", "presence_penalty",
                     "frequency_penalty", "reasoning_effort"):  # fmt: skip
            if name in params:
                kwargs[name] = params.pop(name)
        if request.tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in request.tools
            ]
            for name in ("tool_choice", "parallel_tool_calls"):
                if name in params:
                    kwargs[name] = params.pop(name)
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    async def complete(self, request: ModelRequest, on_text: OnText | None = None) -> ModelResponse:
        import openai

        kwargs = self._arguments(request)
        try:
            if request.stream or on_text is not None:
                return await self._stream(kwargs, on_text)
            return await self._call(kwargs)
        except Exception as exc:
            raise translate(self.name, openai, exc) from None

    async def _call(self, kwargs: dict[str, Any]) -> ModelResponse:
        # The typed create() spends ~0.8 ms of CPU per call transforming the (already plain)
        # request and building pydantic models of the answer: a third of the client's CPU at
        # eval concurrency. The SDK's documented request method sends the same body with the
        # same auth, headers, timeout and error classes; the JSON answer is read here.
        import httpx2

        body = dict(kwargs)
        body.update(body.pop("extra_body", None) or {})
        answer = await self.client.post("/chat/completions", cast_to=httpx2.Response, body=body)
        try:
            data = answer.json()
        except ValueError:
            raise transport_error(self.name, "the answer is not JSON") from None
        if not isinstance(data, dict):
            raise transport_error(self.name, "the answer is not a JSON object")
        return self._response(data)

    def _response(self, data: dict[str, Any]) -> ModelResponse:
        choices = data.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            raise ProviderError(f"{self.name} returned no choices", retryable=True)
        choice = choices[0]
        message = choice.get("message") or {}
        calls = []
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            raw = function.get("arguments") or ""
            calls.append(ToolCall(call.get("id") or "", function.get("name") or "",
                                  parse_arguments(raw), raw))  # fmt: skip
        finish = choice.get("finish_reason")
        if not isinstance(finish, str):
            raise ProviderError(f"{self.name} returned no finish reason", retryable=True)
        return ModelResponse(
            Message("assistant", message.get("content"), tool_calls=tuple(calls)),
            _usage(data.get("usage")),
            _FINISH.get(finish, finish),
            data.get("model") or "",
            data.get("id"),
        )

    async def _stream(self, kwargs: dict[str, Any], on_text: OnText | None) -> ModelResponse:
        stream = await self.client.chat.completions.create(
            **kwargs, stream=True, stream_options={"include_usage": True}
        )
        text: list[str] = []
        calls: dict[int, dict[str, str]] = {}
        finish: str | None = None
        usage = Usage(known=False)  # until a usage chunk says (some servers never do)
        model = ""
        response_id = None
        async for chunk in stream:
            model = chunk.model or model
            response_id = chunk.id or response_id
            if chunk.usage is not None:
                usage = _usage(chunk.usage.model_dump())
            for choice in chunk.choices or []:
                delta = choice.delta
                if delta is not None and delta.content:
                    text.append(delta.content)
                    if on_text is not None:
                        on_text(delta.content)
                for call in (delta.tool_calls or []) if delta is not None else []:
                    slot = calls.setdefault(call.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = call.id or slot["id"]
                    if call.function is not None:
                        slot["name"] += call.function.name or ""
                        slot["arguments"] += call.function.arguments or ""
                if choice.finish_reason is not None:
                    finish = choice.finish_reason
        if finish is None:
            raise transport_error(self.name, "the stream ended without a finish reason")
        tool_calls = tuple(
            ToolCall(
                slot["id"], slot["name"], parse_arguments(slot["arguments"]), slot["arguments"]
            )
            for _, slot in sorted(calls.items())
        )
        return ModelResponse(
            Message("assistant", "".join(text) or None, tool_calls=tool_calls),
            usage,
            _FINISH.get(finish, finish),
            model,
            response_id,
        )


def _usage(usage: dict[str, Any] | None) -> Usage:
    """Token counts from a Chat Completions `usage` object."""
    if not usage:
        return Usage(known=False)
    details = usage.get("prompt_tokens_details") or {}
    return Usage(
        usage.get("prompt_tokens") or 0,
        usage.get("completion_tokens") or 0,
        details.get("cached_tokens") or 0,
    )

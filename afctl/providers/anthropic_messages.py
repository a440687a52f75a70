"""Anthropic Messages through the official `anthropic` SDK.

Streams are read event by event: a stream that ends before `message_stop`, or without a stop
reason, is an error, never a silently short answer. The SDK's own retries are off.
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
    ToolCall,
    Usage,
)

DEFAULT_MAX_TOKENS = 4096
_STOP = {"end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls",
         "max_tokens": "length", "refusal": "content_filter", "pause_turn": "stop"}  # fmt: skip


def to_anthropic(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """(system prompt, messages): tool results become `tool_result` blocks in user turns."""
    system = [m.content or "" for m in messages if m.role == "system"]
    converted: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            block: dict[str, Any] = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content or "",
            }
            if message.is_error:
                block["is_error"] = True
            if (
                converted
                and converted[-1]["role"] == "user"
                and isinstance(converted[-1]["content"], list)
            ):
                converted[-1]["content"].append(block)
            else:
                converted.append({"role": "user", "content": [block]})
        elif message.role == "assistant":
            blocks: list[dict[str, Any]] = []
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                blocks.append(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                )
            converted.append({"role": "assistant", "content": blocks or ""})
        else:
            converted.append({"role": "user", "content": message.content or ""})
    return ("\n\n".join(system) if system else None), converted


class AnthropicProvider:
    def __init__(self, config: ModelConfig, api_key: str, headers: dict[str, str]) -> None:
        import anthropic

        self.config = config
        self.name = config.provider
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=config.base_url,
            max_retries=0,
            timeout=config.timeout_s,
            default_headers=headers or None,
        )

    async def aclose(self) -> None:
        await self.client.close()

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        params = dict(request.params)
        system, messages = to_anthropic(request.messages)
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": messages,
            "max_tokens": params.pop("max_tokens", DEFAULT_MAX_TOKENS),
        }
        if system:
            kwargs["system"] = system
        # Sampling parameters go in the body as such: recent SDKs dropped their typed
        # arguments, while the API still takes them for the models that support them.
        extra: dict[str, Any] = dict(params.pop("extra", None) or {})
        for name in ("temperature", "top_p"):
            if name in params:
                extra[name] = params.pop(name)
        if "stop" in params:
            kwargs["stop_sequences"] = params.pop("stop")
        if request.tools:
            kwargs["tools"] = [
                {"name": t.name, "description": t.description, "input_schema": t.parameters}
                for t in request.tools
            ]
            choice = params.pop("tool_choice", None)
            if choice is not None or params.get("parallel_tool_calls") is False:
                mapped: dict[str, Any] = {
                    "type": {"required": "any"}.get(choice or "auto", choice or "auto")
                }
                if params.get("parallel_tool_calls") is False and mapped["type"] != "none":
                    mapped["disable_parallel_tool_use"] = True
                kwargs["tool_choice"] = mapped
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    async def complete(self, request: ModelRequest, on_text: OnText | None = None) -> ModelResponse:
        import anthropic

        kwargs = self._arguments(request)
        try:
            if request.stream or on_text is not None:
                return await self._stream(kwargs, on_text)
            response = await self.client.messages.create(**kwargs)
        except Exception as exc:
            raise translate(self.name, anthropic, exc) from None
        text = "".join(b.text for b in response.content if b.type == "text")
        calls = tuple(
            ToolCall(b.id, b.name, dict(b.input or {}), json.dumps(b.input or {}))
            for b in response.content
            if b.type == "tool_use"
        )
        if response.stop_reason is None:
            raise transport_error(self.name, "the response has no stop reason")
        return ModelResponse(
            Message("assistant", text or None, tool_calls=calls),
            _usage(response.usage),
            _STOP.get(response.stop_reason, response.stop_reason),
            response.model,
            response.id,
        )

    async def _stream(self, kwargs: dict[str, Any], on_text: OnText | None) -> ModelResponse:
        stream = await self.client.messages.create(**kwargs, stream=True)
        text: list[str] = []
        blocks: dict[int, dict[str, Any]] = {}
        stop_reason = None
        finished = False
        input_tokens = output_tokens = cached = 0
        model = ""
        response_id = None
        started = False
        async for event in stream:
            kind = event.type
            if kind != "message_start" and not started and kind != "ping":
                # the SDK skips an event it cannot name: a message that does not open with
                # message_start lost something, and is retried like a malformed chunk
                raise transport_error(self.name, f"the stream began with {kind}, not message_start")
            if kind == "message_start":
                started = True
                model = event.message.model
                response_id = event.message.id
                input_tokens = event.message.usage.input_tokens or 0
                cached = getattr(event.message.usage, "cache_read_input_tokens", 0) or 0
                output_tokens = event.message.usage.output_tokens or 0
            elif kind == "content_block_start":
                block = event.content_block
                blocks[event.index] = {
                    "type": block.type,
                    "id": getattr(block, "id", ""),
                    "name": getattr(block, "name", ""),
                    "json": "",
                }
            elif kind == "content_block_delta":
                if event.index not in blocks and event.delta.type == "text_delta":
                    raise transport_error(self.name, "a text delta came for a block never started")
                delta = event.delta
                if delta.type == "text_delta":
                    text.append(delta.text)
                    if on_text is not None:
                        on_text(delta.text)
                elif delta.type == "input_json_delta":
                    blocks.setdefault(
                        event.index, {"type": "tool_use", "id": "", "name": "", "json": ""}
                    )
                    blocks[event.index]["json"] += delta.partial_json
            elif kind == "message_delta":
                stop_reason = event.delta.stop_reason or stop_reason
                if event.usage is not None:
                    output_tokens = event.usage.output_tokens or output_tokens
            elif kind == "message_stop":
                finished = True
        if not finished or stop_reason is None:
            raise transport_error(self.name, "the stream ended before the message was complete")
        calls = []
        for _, block in sorted(blocks.items()):
            if block["type"] == "tool_use":
                try:
                    arguments = json.loads(block["json"] or "{}")
                except ValueError:
                    arguments = {}
                calls.append(ToolCall(block["id"], block["name"], arguments, block["json"]))
        return ModelResponse(
            Message("assistant", "".join(text) or None, tool_calls=tuple(calls)),
            Usage(input_tokens, output_tokens, cached),
            _STOP.get(stop_reason, stop_reason),
            model,
            response_id,
        )


def _usage(usage: Any) -> Usage:
    cached = getattr(usage, "cache_read_input_tokens", 0) or 0
    return Usage(usage.input_tokens or 0, usage.output_tokens or 0, cached)

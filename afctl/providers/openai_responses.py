"""OpenAI's Responses API through the official `openai` SDK (`api: responses` on a Model).

afctl sends the whole conversation each turn and keeps nothing on OpenAI's side (`store:
false`, no `previous_response_id`): the prompt log is the record, and a replay needs no server
state. System messages become `instructions`; tool calls and their results become
`function_call` and `function_call_output` items. A stream that ends without
`response.completed` (or `response.incomplete`) is an error, never a silently short answer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from afctl.errors import RunError
from afctl.providers.http_errors import transport_error
from afctl.providers.openai_chat import OpenAIChatProvider, parse_arguments
from afctl.providers.types import (
    Message,
    ModelRequest,
    ModelResponse,
    OnText,
    ProviderError,
    ToolCall,
    Usage,
)

_UNSUPPORTED = ("stop", "seed", "presence_penalty", "frequency_penalty")
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}


def to_responses_input(messages: Sequence[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """(instructions, input items) for a conversation."""
    system = [m.content for m in messages if m.role == "system" and m.content]
    items: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        if message.role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message.tool_call_id,
                    "output": message.content or "",
                }
            )
        elif message.role == "assistant":
            if message.content:
                items.append({"role": "assistant", "content": message.content})
            for call in message.tool_calls:
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call.id,
                        "name": call.name,
                        "arguments": call.raw_arguments or json.dumps(call.arguments),
                    }
                )
        else:
            items.append({"role": message.role, "content": message.content or ""})
    return ("\n\n".join(system) or None), items


class OpenAIResponsesProvider(OpenAIChatProvider):
    """Same client and settings as Chat Completions; another endpoint and message shape."""

    def _arguments(self, request: ModelRequest) -> dict[str, Any]:
        params = dict(request.params)
        extra = params.pop("extra", None) or {}
        unsupported = [name for name in _UNSUPPORTED if name in params]
        if unsupported:
            raise RunError(
                f"{self.config.ref}: the Responses API has no {', '.join(unsupported)}",
                hint="remove them from params, or use api: chat",
            )
        instructions, items = to_responses_input(request.messages)
        kwargs: dict[str, Any] = {"model": request.model, "input": items, "store": False}
        if instructions is not None:
            kwargs["instructions"] = instructions
        if "max_tokens" in params:
            kwargs["max_output_tokens"] = params.pop("max_tokens")
        if "reasoning_effort" in params:
            kwargs["reasoning"] = {"effort": params.pop("reasoning_effort")}
        for name in ("temperature", "top_p"):
            if name in params:
                kwargs[name] = params.pop(name)
        if request.tools:
            kwargs["tools"] = [
                {
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                    "strict": False,  # afctl validates the arguments against the schema itself
                }
                for tool in request.tools
            ]
            for name in ("tool_choice", "parallel_tool_calls"):
                if name in params:
                    kwargs[name] = params.pop(name)
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    async def _call(self, kwargs: dict[str, Any]) -> ModelResponse:
        return self._from_response(await self.client.responses.create(**kwargs))

    def _from_response(self, response: Any) -> ModelResponse:
        status = response.status
        if status == "failed":
            error = response.error
            message = getattr(error, "message", None) or "the response failed"
            code = getattr(error, "code", None)
            raise ProviderError(f"{self.name}: {message}", retryable=code == "server_error")
        if status == "completed":
            finish = None
        elif status == "incomplete":
            reason = getattr(response.incomplete_details, "reason", None)
            finish = _INCOMPLETE.get(reason or "", reason or "incomplete")
        else:
            raise ProviderError(f"{self.name} returned a response that is {status}", retryable=True)
        text: list[str] = []
        calls: list[ToolCall] = []
        for item in response.output or []:
            if item.type == "message":
                text.extend(part.text for part in item.content if part.type == "output_text")
            elif item.type == "function_call":
                calls.append(
                    ToolCall(
                        item.call_id, item.name, parse_arguments(item.arguments), item.arguments
                    )
                )
        return ModelResponse(
            Message("assistant", "".join(text) or None, tool_calls=tuple(calls)),
            _usage(response.usage),
            finish or ("tool_calls" if calls else "stop"),
            response.model or "",
            response.id,
        )

    async def _stream(self, kwargs: dict[str, Any], on_text: OnText | None) -> ModelResponse:
        stream = await self.client.responses.create(**kwargs, stream=True)
        final: Any = None
        async for event in stream:
            kind = event.type
            if kind == "response.output_text.delta":
                if on_text is not None and event.delta:
                    on_text(event.delta)
            elif kind in ("response.completed", "response.incomplete", "response.failed"):
                final = event.response
            elif kind == "error":
                raise ProviderError(
                    f"{self.name}: {event.message}", retryable=event.code == "server_error"
                )
        if final is None:
            raise transport_error(self.name, "the stream ended before the response completed")
        return self._from_response(final)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage(known=False)
    details = getattr(usage, "input_tokens_details", None)
    cached = getattr(details, "cached_tokens", 0) if details is not None else 0
    return Usage(usage.input_tokens or 0, usage.output_tokens or 0, cached or 0)

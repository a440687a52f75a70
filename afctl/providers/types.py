"""The normalized conversation types every provider adapter speaks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from afctl.errors import RunError

if TYPE_CHECKING:
    from afctl.providers.models import ModelConfig
    from afctl.tool_context import ToolContext


@dataclass(frozen=True)
class ToolCall:
    """A tool call the model asked for."""

    id: str
    name: str
    arguments: dict[str, Any]
    """The arguments as parsed JSON ({} when they were not valid JSON; see `raw_arguments`)."""
    raw_arguments: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True)
class Message:
    """One message of a conversation: system, user, assistant (text and/or tool calls) or tool."""

    role: str
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    """For tool results: the tool's name."""
    is_error: bool = False
    """For tool results: the call failed and `content` says why."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.tool_calls:
            data["tool_calls"] = [c.to_dict() for c in self.tool_calls]
        if self.tool_call_id is not None:
            data["tool_call_id"] = self.tool_call_id
        if self.name is not None:
            data["name"] = self.name
        if self.is_error:
            data["is_error"] = True
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        return cls(
            role=data["role"],
            content=data.get("content"),
            tool_calls=tuple(
                ToolCall(c["id"], c["name"], c.get("arguments") or {})
                for c in data.get("tool_calls", ())
            ),
            tool_call_id=data.get("tool_call_id"),
            name=data.get("name"),
            is_error=bool(data.get("is_error")),
        )


@dataclass(frozen=True)
class ToolSpec:
    """A tool as offered to the model."""

    name: str
    description: str
    parameters: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "parameters": self.parameters}


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    known: bool = True
    """False when the provider did not say (a stream without a usage chunk): the counts are
    then what is known, and reports show them, and the cost, as unknown (null), never 0."""

    @property
    def total(self) -> int:
        return self.input_tokens + self.output_tokens

    def plus(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens,
                     self.cached_input_tokens + other.cached_input_tokens,
                     self.known and other.known)  # fmt: skip

    def counts(self) -> dict[str, int | None]:
        """The token counts as recorded: null when unknown."""
        return {
            "input_tokens": self.input_tokens if self.known else None,
            "output_tokens": self.output_tokens if self.known else None,
            "cached_input_tokens": self.cached_input_tokens if self.known else None,
        }


@dataclass(frozen=True)
class ModelRequest:
    model: str
    """The provider's own model id (`gpt-4.1-mini`)."""
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    turn: int = 1
    """Which model call of the run this is (1 is the first); not sent to the API."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "turn": self.turn,
            "model": self.model,
            "messages": [m.to_dict() for m in self.messages],
            "tools": [t.to_dict() for t in self.tools],
            "params": self.params,
            "stream": self.stream,
        }


@dataclass(frozen=True)
class ModelResponse:
    message: Message
    """The assistant's message (text, tool calls, or both)."""
    usage: Usage
    finish_reason: str
    """stop, tool_calls, length or content_filter."""
    model: str = ""
    """The model the provider says answered."""
    response_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "message": self.message.to_dict(),
            "usage": self.usage.counts(),
            "finish_reason": self.finish_reason,
            "model": self.model,
            "response_id": self.response_id,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelResponse:
        usage = data.get("usage") or {}
        return cls(
            Message.from_dict(data["message"]),
            Usage(
                usage.get("input_tokens") or 0,
                usage.get("output_tokens") or 0,
                usage.get("cached_input_tokens") or 0,
                usage.get("input_tokens", 0) is not None,
            ),
            data["finish_reason"],
            data.get("model", ""),
            data.get("response_id"),
        )


OnText = Callable[[str], None]
"""Called with each piece of streamed text."""


class Provider(Protocol):
    """A model API family. Adapters never retry on their own: `call_with_retries` does."""

    async def complete(
        self, request: ModelRequest, on_text: OnText | None = None
    ) -> ModelResponse: ...

    async def aclose(self) -> None: ...


ProviderFactory = Callable[["ModelConfig", "ToolContext"], Provider]
"""Builds a provider for a model; reads secrets through the context (they get redacted)."""


class ProviderError(RunError):
    """A model call failed.

    `retryable` says whether trying again may help (429, 5xx, timeouts, dropped connections);
    `retry_after` is the server's own advice in seconds, when it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after

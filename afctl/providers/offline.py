"""Models that need no key and no network: `local/echo` and `local/scripted`.

`local/echo` answers with the latest user input. `local/scripted` follows rules (from the Model
resource's `spec.script`, or a file it names): the first rule whose conditions all hold decides
the reply, text or tool calls. They make demos, tests and CI deterministic and free.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from afctl.errors import RunError, UsageError
from afctl.providers.types import (
    Message,
    ModelRequest,
    ModelResponse,
    OnText,
    ProviderError,
    ToolCall,
    Usage,
)
from afctl.safety.regex import search


def _tokens(text: str | None) -> int:
    """A rough token count (words), so offline runs report usage like real ones."""
    return len((text or "").split())


def _usage(request: ModelRequest, reply: str | None, calls: Sequence[ToolCall]) -> Usage:
    prompt = sum(_tokens(m.content) for m in request.messages)
    output = _tokens(reply) + sum(_tokens(json.dumps(c.arguments)) + 1 for c in calls)
    return Usage(prompt, output)


def latest_user_input(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content or ""
    return ""


def _stream(text: str, on_text: OnText | None) -> None:
    if on_text is not None:
        for piece in re.findall(r"\S+\s*|\s+", text):
            on_text(piece)


class EchoProvider:
    """Answers with the latest user input."""

    async def complete(self, request: ModelRequest, on_text: OnText | None = None) -> ModelResponse:
        text = latest_user_input(request.messages)
        _stream(text, on_text)
        return ModelResponse(
            Message("assistant", text), _usage(request, text, ()), "stop", "local/echo"
        )

    async def aclose(self) -> None:
        return None


class ScriptedProvider:
    """Replies by rules: match the latest input, the turn, or the tool that just answered."""

    def __init__(self, script: dict[str, Any] | None, base_dir: Path | None = None) -> None:
        script = script or {}
        self.rules: list[dict[str, Any]] = list(script.get("rules") or [])
        self.default: str | None = script.get("default")
        if script.get("file"):
            self.rules += _rules_from_file(Path(base_dir or ".") / str(script["file"]))

    async def complete(self, request: ModelRequest, on_text: OnText | None = None) -> ModelResponse:
        messages = request.messages
        text_input = latest_user_input(messages)
        turn = request.turn
        last = messages[-1] if messages else None
        tool_result = last.content if last is not None and last.role == "tool" else None
        context = {"input": text_input, "turn": turn, "tool_result": tool_result or ""}
        for rule in self.rules:
            if _matches(rule, text_input, turn, last):
                calls = tuple(
                    ToolCall(
                        f"call_{turn}_{index}",
                        str(c["name"]),
                        _render_values(dict(c.get("arguments") or {}), context),
                    )
                    for index, c in enumerate(rule.get("tool_calls") or ())
                )
                reply = _render(rule["reply"], context) if rule.get("reply") is not None else None
                if reply is not None:
                    _stream(reply, on_text)
                return ModelResponse(
                    Message("assistant", reply, tool_calls=calls),
                    _usage(request, reply, calls),
                    "tool_calls" if calls else "stop",
                    "local/scripted",
                )
        reply = _render(self.default, context) if self.default is not None else text_input
        _stream(reply, on_text)
        return ModelResponse(
            Message("assistant", reply), _usage(request, reply, ()), "stop", "local/scripted"
        )

    async def aclose(self) -> None:
        return None


def _matches(rule: dict[str, Any], text: str, turn: int, last: Message | None) -> bool:
    if "turn" in rule and rule["turn"] != turn:
        return False
    if "contains" in rule and str(rule["contains"]).lower() not in text.lower():
        return False
    if "match" in rule and not search(str(rule["match"]), text):
        return False
    after_tool = last is not None and last.role == "tool"
    if "after_tool" in rule:
        return after_tool and last is not None and last.name == rule["after_tool"]
    # a rule with neither turn nor after_tool answers the user, not a tool's result: a
    # `contains` rule that calls a tool would otherwise call it again and again
    return "turn" in rule or not after_tool


def _render_values(value: Any, context: dict[str, Any]) -> Any:
    """Tool-call arguments with their string values rendered as templates."""
    if isinstance(value, str):
        return _render(value, context)
    if isinstance(value, dict):
        return {k: _render_values(v, context) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_values(v, context) for v in value]
    return value


def _render(template: str, values: dict[str, Any]) -> str:
    """A script's reply rendered over the conversation.

    Raises:
        ProviderError: it cannot be rendered (not retried: it would fail again).
    """
    from jinja2 import TemplateError

    from afctl.safety.templates import TemplateFailure, render

    try:
        return render(template, values)
    except (TemplateError, TemplateFailure) as exc:
        raise ProviderError(
            f"local/scripted: cannot render a reply: {exc}", retryable=False
        ) from None


def _rules_from_file(path: Path) -> list[dict[str, Any]]:
    from afctl.manifests.yaml_loader import load_bytes

    try:
        loaded = load_bytes(path.read_bytes(), str(path))
    except OSError as exc:
        raise UsageError(f"cannot read the script file {path}: {exc.strerror}") from None
    errors = [d for d in loaded.diagnostics if d.is_error]
    if errors or not loaded.documents:
        raise UsageError(f"{path} is not a YAML or JSON list of rules")
    data = loaded.documents[0].data
    rules = data.get("rules") if isinstance(data, dict) else data
    if not isinstance(rules, list):
        raise UsageError(f"{path} must hold a list of rules (or a mapping with `rules:`)")
    return rules


HASHING_DIMENSIONS = 256
_TOKEN = re.compile(r"\w+", re.UNICODE)


def hashing_vector(text: str, dimensions: int = HASHING_DIMENSIONS) -> list[float]:
    """A bag-of-words vector by feature hashing: words and word pairs hashed (stably) into
    `dimensions` signed buckets, L2-normalized. No model, no network: texts that share words
    point the same way."""
    import hashlib
    import math

    vector = [0.0] * dimensions
    words = [w.lower() for w in _TOKEN.findall(text)]
    features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
    for feature in features:
        digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest[:4], "little") % dimensions
        vector[bucket] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


class HashingEmbedder:
    """`local/hashing`: embeddings computed on the spot (see `hashing_vector`)."""

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        return [hashing_vector(text) for text in texts]

    async def complete(self, request: ModelRequest, on_text: OnText | None = None) -> ModelResponse:
        raise RunError("local/hashing only makes embeddings; it cannot answer")

    async def aclose(self) -> None:
        return None

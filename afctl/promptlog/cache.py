"""The response cache of evals, in `.afctl/logs.db`: a model's answer kept under a key made of
everything that can change it — the provider and its endpoint, the resolved model, the
messages, the tools offered (with their schemas), the parameters and the repeat index (so the
repeats of a case stay independent samples). Anything else that differs gives a miss.

Each entry also keeps the key's inputs one by one (hashes for the bulky ones), so a miss can be
explained: the nearest entry for the same messages, and which inputs differ from it.
A cached response passes through the run's redactor before it is stored, like everything else
in the log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from afctl.ids import utc_now
from afctl.promptlog.store import PromptLog
from afctl.providers.models import ModelConfig
from afctl.providers.types import ModelRequest, ModelResponse
from afctl.storage.sql import Sql


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def key_inputs(config: ModelConfig, request: ModelRequest, repeat: int) -> dict[str, Any]:
    """What a cached response is keyed by: small inputs as they are, bulky ones as hashes."""
    return {
        "provider": config.provider,
        "endpoint": config.base_url or "",
        "api": config.api,
        "model": request.model,
        "messages": _digest([m.to_dict() for m in request.messages]),
        "tools": _digest([t.to_dict() for t in request.tools]),
        "tool_names": sorted(t.name for t in request.tools),
        "params": dict(sorted(request.params.items())),
        "repeat": repeat,
    }


@dataclass
class Miss:
    """A model call the cache could not answer, and why."""

    run_id: str
    turn: int
    inputs: dict[str, Any]
    differs: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    """Against the nearest cached entry for the same messages: input -> (cached, now)."""

    def explain(self) -> str:
        if not self.differs:
            return "no cached response for these messages"
        parts = []
        for name, (cached, now) in self.differs.items():
            if name in ("messages", "tools"):
                parts.append(f"{name} changed")
            else:
                parts.append(f"{name} {json.dumps(cached)} -> {json.dumps(now)}")
        return "differs from the cached response for these messages in: " + ", ".join(parts)


@dataclass(frozen=True)
class Lookup:
    key: str
    inputs: dict[str, Any]
    response: ModelResponse | None
    """The cached response; None on a miss."""


class ResponseCache:
    """Model responses keyed by their inputs (see the module's text). Not thread-safe; use it
    from the event loop of the runs that share it."""

    def __init__(self, log: PromptLog, *, explain: bool = False) -> None:
        self.log = log
        self.explain = explain
        self.hits = 0
        self.missed = 0
        self.misses: list[Miss] = []
        """Each miss, when explaining (otherwise only counted: an eval may have millions)."""
        self._pending: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        """key -> (inputs, response) stored but not yet written to the log."""

    def get(self, config: ModelConfig, request: ModelRequest, repeat: int, run_id: str) -> Lookup:
        """This call's key and its cached response, if there is one."""
        inputs = key_inputs(config, request, repeat)
        key = _digest(inputs)
        cached = self._pending[key][1] if key in self._pending else None
        if cached is None:
            row = self.log.sql.execute(
                "SELECT response FROM response_cache WHERE key = ?", [key]
            ).fetchone()
            cached = None if row is None else json.loads(row[0])
        if cached is not None:
            self.hits += 1
            return Lookup(key, inputs, ModelResponse.from_dict(cached))
        self.missed += 1
        if self.explain:
            self.misses.append(Miss(run_id, request.turn, inputs, self._nearest(inputs)))
        return Lookup(key, inputs, None)

    def put(self, lookup: Lookup, response: ModelResponse, redact: Callable[[str], str]) -> None:
        """Keep `response`, redacted, under the key of a miss."""
        text = redact(json.dumps(response.to_dict(), ensure_ascii=False))
        self._pending[lookup.key] = (lookup.inputs, json.loads(text))
        row = [lookup.key, lookup.inputs["messages"], json.dumps(lookup.inputs), text, utc_now()]

        def write(connection: Sql) -> None:
            connection.execute(
                "INSERT INTO response_cache (key, messages, inputs, response, created_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET messages = "
                "excluded.messages, inputs = excluded.inputs, response = excluded.response, "
                "created_at = excluded.created_at",
                row,
            )
            self._pending.pop(lookup.key, None)  # the connection sees it from now on

        self.log.submit(write)

    def _nearest(self, inputs: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """The inputs that differ from the closest cached entry with the same messages."""
        messages = inputs["messages"]
        candidates = [json.loads(text) for (text,) in self.log.sql.execute(
            "SELECT inputs FROM response_cache WHERE messages = ? LIMIT 50", [messages]
        )]  # fmt: skip
        candidates += [kept for kept, _ in self._pending.values() if kept["messages"] == messages]
        best: dict[str, tuple[Any, Any]] = {}
        for cached in candidates:
            differs = {
                name: (cached.get(name), value)
                for name, value in inputs.items()
                if name != "tool_names" and cached.get(name) != value
            }
            if not best or len(differs) < len(best):
                best = differs
        return best

    def summary(self) -> dict[str, Any]:
        return {"hits": self.hits, "misses": self.missed}

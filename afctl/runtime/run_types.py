"""The values a run is started with and ends with: what to run (`RunRequest`), what the
caller plugs in (`RunHooks`), the shared turn budget, and the result."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from afctl.providers.models import ModelConfig
from afctl.providers.types import Message, OnText, ProviderFactory, ToolCall, Usage

if TYPE_CHECKING:
    from afctl.promptlog.cache import ResponseCache

DEFAULT_MAX_TURNS = 10
DEFAULT_MEMORY_MESSAGES = 40


@dataclass(frozen=True)
class RunResult:
    """What a run produced; everything else about it is in the prompt log under `run_id`."""

    run_id: str
    status: str
    output: str | None
    error: str | None = None
    error_type: str | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    latency_ms: float = 0.0
    turns: int = 0
    tool_calls: int = 0
    model: str | None = None
    agent: str | None = None
    """The agent that gave the output (another than the one started, after a handoff)."""

    @property
    def ok(self) -> bool:
        return self.status == "succeeded"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "status": self.status,
            "output": self.output,
            "error": self.error,
            "error_type": self.error_type,
            "usage": {k: v for k, v in self.usage.counts().items() if k != "cached_input_tokens"},
            "cost_usd": self.cost_usd,
            "latency_ms": round(self.latency_ms, 1),
            "turns": self.turns,
            "tool_calls": self.tool_calls,
            "model": self.model,
            "agent": self.agent,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """A result as `to_dict` gave it (a remote client reads the server's answer)."""
        counts = data.get("usage") or {}
        known = counts.get("input_tokens") is not None
        usage = Usage(int(counts.get("input_tokens") or 0), int(counts.get("output_tokens") or 0),
                      known=known)  # fmt: skip
        return cls(data["run_id"], data["status"], data.get("output"), data.get("error"),
                   data.get("error_type"), usage, data.get("cost_usd"),
                   float(data.get("latency_ms") or 0.0), int(data.get("turns") or 0),
                   int(data.get("tool_calls") or 0), data.get("model"),
                   data.get("agent"))  # fmt: skip


class RunStopped(Exception):
    """Ends a run early with a status (a limit, an invalid output, a pause): not an error of
    afctl's."""

    def __init__(
        self, error_type: str, message: str, status: str = "failed", output: str | None = None
    ) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status
        self.output = output


OnEvent = Callable[[str, dict[str, Any]], None]
"""(event kind, its redacted payload) -> None."""

Approver = Callable[[str, dict[str, Any]], Awaitable[bool]]
"""(tool name, arguments) -> whether a person allows the call."""

ToolRunner = Callable[[ToolCall, int], Awaitable[Any]]
"""Carries out (tool call, turn) instead of the tool itself. Raise ToolFailed for a failure."""


@dataclass(frozen=True)
class RunRequest:
    """What to run the agent with (the input itself is given to `AgentRun.run`)."""

    variables: dict[str, Any] = field(default_factory=dict)
    session: str | None = None
    model: str | None = None
    """Use this model instead of the agent's (`afctl run --model`)."""
    params: dict[str, Any] = field(default_factory=dict)
    """Model parameters over the agent's (`afctl replay --live --set k=v`)."""
    history: list[Message] | None = None
    """The conversation before this input, given directly (replay) instead of from a session."""
    env: str = "default"
    parent_id: str | None = None
    eval_id: str | None = None
    """The eval this run is a case of."""
    replay_of: str | None = None
    """The run this one replays live: recorded with it, and its spend tagged as a replay's."""
    repeat: int = 0
    """Which repeat of an eval case this run is: part of the cache key."""
    run_id: str | None = None
    """The id the run gets (a new ULID when None): a server names a background run first."""
    worker: str | None = None
    """The `afctl worker` carrying the run out (recorded with it)."""


@dataclass(frozen=True)
class RunHooks:
    """What the caller plugs into a run: where text goes, who approves, and what stands in for
    the real providers and tools (replay) or in front of them (the eval cache)."""

    on_text: OnText | None = None
    approver: Approver | None = None
    """Asks a person whether a tool call may run; without one, such a run pauses."""
    provider_factory: ProviderFactory | None = None
    """Builds the innermost model: afctl's registry (with plugins) by default."""
    tool_runner: ToolRunner | None = None
    """Replay serves recorded tool results this way."""
    cache: ResponseCache | None = None
    """Answers model calls it has seen (evals); a cached answer costs nothing."""
    turn_budget: TurnBudget | None = None
    """Model calls left for this run and the agents it calls as tools (shared with them)."""
    on_event: OnEvent | None = None
    """Told of each event of the run as it is recorded (kind, payload as kept: redacted), and
    of a tool call as it starts (`tool_started`): a server streams them."""


class TurnBudget:
    """The model calls a run may still make, shared with the agents it calls as tools, so
    agents calling each other cannot loop past the run's `max_turns`."""

    def __init__(self, turns: int) -> None:
        self.limit = turns
        self.left = turns

    def spend(self) -> None:
        if self.left <= 0:
            raise RunStopped(
                "limit", f"limit: the run and its agents used up max_turns={self.limit}"
            )
        self.left -= 1


@dataclass(frozen=True)
class Step:
    """An event of a run as it was logged."""

    type: str
    payload: dict[str, Any]


@dataclass
class Spend:
    """A run's tokens and cost so far (cost None once a model without prices was used), and
    its limits on them."""

    usage: Usage = field(default_factory=Usage)
    cost: float | None = 0.0

    def add(self, config: ModelConfig, usage: Usage, *, cached: bool = False) -> float | None:
        """Add a model call's tokens and cost; returns the call's cost (0 for a cached
        answer)."""
        from afctl.providers.pricing import cost_usd

        cost = cost_usd(config, usage)
        if cost is not None and cached:
            cost = 0.0
        self.usage = self.usage.plus(usage)
        self.cost = None if cost is None or self.cost is None else self.cost + cost
        return cost

    def check(self, limits: dict[str, Any]) -> None:
        """Raises RunStopped past `max_tokens` or `max_cost_usd`."""
        max_tokens = limits.get("max_tokens")
        if max_tokens is not None and self.usage.total > int(max_tokens):
            raise RunStopped(
                "limit", f"limit: {self.usage.total} tokens used, over max_tokens={max_tokens}"
            )
        max_cost = limits.get("max_cost_usd")
        if max_cost is not None and self.cost is not None and self.cost > float(max_cost):
            raise RunStopped("limit", f"limit: cost ${self.cost:.4f}, over max_cost_usd={max_cost}")


class ItemRunner(Protocol):
    """Runs the items of a workflow's `for_each` agent steps elsewhere (`afctl worker`s)."""

    async def agent(
        self, revision: str, agent: str, text: str, request: RunRequest, *, cache: bool
    ) -> RunResult:
        """Run `agent` of the resources stored as `revision` on `text`, as `request` says
        (its run id is set); its result once it is done. `cache`: answer from the response
        cache (an eval's)."""
        ...

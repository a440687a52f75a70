"""A job: one run (an agent's or a workflow's) a worker is to carry out, named by its run id
before it is queued, so a job delivered twice is the same run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Job:
    run_id: str
    kind: str
    """agent or workflow."""
    target: str
    """The agent's or workflow's name."""
    revision: str
    """The content hash of the resources it runs on, stored in the prompt log by whoever
    queued it: workers read manifests from there, not from a checkout."""
    given: Any
    """An agent's input text, a workflow's inputs."""
    variables: dict[str, Any] = field(default_factory=dict)
    env: str = "default"
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    session: str | None = None
    eval_id: str | None = None
    repeat: int = 0
    cache: bool = False
    """Answer from (and fill) the prompt log's response cache (evals)."""
    timeout_s: float | None = None
    """An eval case's time limit: past it the run is stopped and recorded failed, with
    error type `timeout`."""
    parent_id: str | None = None
    """The workflow run whose `for_each` item this is (see `fan_out`)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

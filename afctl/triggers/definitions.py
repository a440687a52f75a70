"""The triggers of a set of workflows, and when the scheduled ones fire next."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

from afctl.errors import UsageError


@dataclass(frozen=True)
class Trigger:
    workflow: str
    index: int
    """Its position in the workflow's `triggers` (part of its identity)."""
    type: str
    spec: dict[str, Any]

    @property
    def key(self) -> str:
        return f"{self.workflow}#{self.index}"

    def describe(self) -> str:
        if self.type == "schedule":
            return f"{self.spec['cron']} ({self.spec.get('timezone', 'UTC')})"
        if self.type == "webhook":
            signed = ", signed" if self.spec.get("secret") else ""
            return f"POST {self.spec['path']}{signed}"
        return ", ".join(self.spec["paths"]) + f" (debounce {self.spec.get('debounce_ms', 500)} ms)"


RESERVED_PATHS = ("/v1/", "/v1", "/mcp", "/healthz", "/readyz", "/metrics")
"""Paths `afctl serve` answers itself; no webhook may take them."""


def triggers_of(workflows: dict[str, dict[str, Any]]) -> list[Trigger]:
    """Every trigger of the workflows, in a stable order.

    Raises:
        UsageError: two webhooks listen on one path.
    """
    found = []
    paths: dict[str, str] = {}
    for name in sorted(workflows):
        spec = workflows[name].get("spec") or {}
        for index, trigger in enumerate(spec.get("triggers") or []):
            made = Trigger(name, index, str(trigger["type"]), dict(trigger))
            if made.type == "webhook":
                path = str(trigger["path"])
                if path.startswith(RESERVED_PATHS):
                    raise UsageError(f"workflow/{name}: the webhook path {path} is the server's",
                                     hint="paths under " + ", ".join(RESERVED_PATHS)
                                          + " are taken; use one like /hooks/NAME")  # fmt: skip
                if path in paths:
                    raise UsageError(
                        f"workflow/{name} and workflow/{paths[path]} both listen on {path}",
                        hint="give every webhook its own path",
                    )
                paths[path] = name
            found.append(made)
    return found


def zone(name: str) -> datetime.tzinfo:
    """An IANA time zone.

    Raises:
        UsageError: there is no such zone.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"unknown time zone {name!r}", hint="use an IANA name like Europe/Paris"
        ) from None


def next_fire(trigger: Trigger, after: datetime.datetime) -> datetime.datetime:
    """The first occurrence of a schedule strictly after `after` (an aware datetime), in UTC.

    Raises:
        UsageError: the cron expression or the zone is invalid.
    """
    from croniter import CroniterError, croniter

    local = after.astimezone(zone(str(trigger.spec.get("timezone", "UTC"))))
    try:
        following: datetime.datetime = croniter(str(trigger.spec["cron"]), local).get_next(
            datetime.datetime
        )
    except (CroniterError, ValueError, KeyError) as exc:
        raise UsageError(
            f"workflow/{trigger.workflow}: invalid cron {trigger.spec.get('cron')!r}: {exc}"
        ) from None
    return following.astimezone(datetime.UTC)

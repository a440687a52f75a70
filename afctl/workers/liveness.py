"""When a run is done, and when a running one is still looked after by its worker."""

from __future__ import annotations

import datetime

from afctl.workers.settings import STALE_S

FINISHED = frozenset({"succeeded", "failed", "blocked", "awaiting_approval"})
"""A run in one of these is done (`interrupted` is not: its job goes back to the queue and a
worker resumes it)."""


def fresh(beat: str | None) -> bool:
    """Whether a run's heartbeat is younger than STALE_S."""
    try:
        then = datetime.datetime.fromisoformat(beat or "")
    except ValueError:
        return False
    return (datetime.datetime.now(datetime.UTC) - then).total_seconds() < STALE_S

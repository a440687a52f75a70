"""afctl's own log: diagnostics on stderr, as text or (for log pipelines) one JSON object a line.

`--log-format json` or `AFCTL_LOG_FORMAT=json` switches to JSON lines at level info, each with
the run id of the run it belongs to, so logs of many runs can be correlated. The text format
shows warnings and errors only (retries, fallbacks).
"""

from __future__ import annotations

import collections
import contextvars
import datetime
import json
import logging
import sys
from typing import Any

logger = logging.getLogger("afctl")
current_run: contextvars.ContextVar[str | None] = contextvars.ContextVar("afctl_run", default=None)


def _redacted(text: str) -> str:
    from afctl.safety.secrets import redact_known

    return redact_known(text)


class JsonLines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
            "run_id": current_run.get(),
        }
        data.update(getattr(record, "afctl", {}) or {})
        return _redacted(json.dumps(data, ensure_ascii=False, default=str))


class Text(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"afctl: {record.levelname.lower()}: {_redacted(record.getMessage())}"


started: collections.deque[tuple[str, str]] = collections.deque(maxlen=100)
"""(run id, kind) of the latest top-level runs this process started, in order: what an
interrupt names (bounded: a server starts millions)."""


def note_started(run_id: str, kind: str, parent_id: str | None) -> None:
    if parent_id is None:
        started.append((run_id, kind))


def configure(log_format: str = "text", level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLines() if log_format == "json" else Text())
    logger.handlers[:] = [handler]
    default = "info" if log_format == "json" else "warning"
    logger.setLevel((level or default).upper())
    logger.propagate = False


def event(level: int, message: str, **fields: Any) -> None:
    """Log `message` with structured `fields` (kept as JSON keys in the JSON format)."""
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"afctl": fields})

"""Errors of the HTTP API as `application/problem+json` (RFC 9457).

Every error a request can meet ends here as one JSON object: `type` (a URN naming the kind of
problem, the same kinds as the CLI's errors), `title`, `status`, `detail` (what went wrong and
what to do), and afctl's extensions: `exit_code` (what the CLI exits with for it, so a remote
command exits as a local one would), `hint`, `diagnostics` (a manifest error's problems) and
`request_id`. Nothing of a traceback, and no secret, reaches a response.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from afctl.errors import (
    EXIT_CHECKS_FAILED,
    EXIT_CONFLICT,
    EXIT_ERROR,
    EXIT_INVALID,
    EXIT_USAGE,
    AfctlError,
    ChecksFailed,
    ManifestError,
    RunError,
    StateConflict,
    UsageError,
    UserError,
)

MEDIA_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    411: "Length required",
    413: "Content too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
KINDS = {
    400: "usage",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    411: "length-required",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid",
    429: "rate-limited",
    500: "internal",
    502: "run-error",
    503: "unavailable",
    504: "timeout",
}
EXIT_CODES = {409: EXIT_CONFLICT, 422: EXIT_INVALID, 400: EXIT_USAGE, 404: EXIT_USAGE}
"""The CLI's exit code for a status (a run or resource that is not there is a usage error
locally, exit 64; a remote command exits the same)."""


class Problem(Exception):
    """An HTTP error answer, raised anywhere under a route."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
        exit_code: int | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind or KINDS.get(status, "error")
        self.hint = hint
        self.headers = dict(headers or {})
        self.exit_code = exit_code if exit_code is not None else EXIT_CODES.get(status, EXIT_ERROR)
        self.extra = extra

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:afctl:problem:{self.kind}",
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            "exit_code": self.exit_code,
        }
        if self.hint:
            body["hint"] = self.hint
        body.update(self.extra)
        if request_id:
            body["request_id"] = request_id
        return body


@contextlib.contextmanager
def missing() -> Iterator[None]:
    """Within it, a UsageError (no such run, resource, key: what a lookup raises) is a 404
    with its message and hint (and the CLI's exit code for it, 64)."""
    try:
        yield
    except UsageError as exc:
        raise Problem(404, exc.message, hint=exc.hint) from None


def from_error(exc: AfctlError) -> Problem:
    """The problem an afctl error is, with its exit code and hint."""
    from afctl.safety.secrets import redact_known

    detail = redact_known(exc.message)
    hint = redact_known(exc.hint) if exc.hint else None
    if isinstance(exc, ManifestError):
        diagnostics = [json.loads(redact_known(json.dumps(d.to_dict()))) for d in exc.diagnostics]
        return Problem(422, detail, kind="manifest", hint=hint, exit_code=EXIT_INVALID,
                       diagnostics=diagnostics)  # fmt: skip
    if isinstance(exc, StateConflict):
        return Problem(409, detail, kind="conflict", hint=hint, exit_code=EXIT_CONFLICT)
    if isinstance(exc, ChecksFailed):
        return Problem(422, detail, kind="checks-failed", hint=hint, exit_code=EXIT_CHECKS_FAILED)
    if isinstance(exc, UserError):
        return Problem(422, detail, kind="invalid", hint=hint, exit_code=EXIT_INVALID)
    if isinstance(exc, RunError):
        return Problem(502, detail, kind="run-error", hint=hint, exit_code=EXIT_ERROR)
    return Problem(400, detail, kind="usage", hint=hint, exit_code=exc.exit_code)


def problem_bytes(problem: Problem, request_id: str | None) -> bytes:
    return json.dumps(problem.body(request_id), ensure_ascii=False).encode()

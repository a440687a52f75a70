"""Turning SDK and HTTP failures into `ProviderError`s that say whether a retry may help."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

from afctl.providers.types import ProviderError

NEVER_RETRY = frozenset({400, 401, 403, 404, 422})
RETRY = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})
_HINTS = {
    401: "check the API key in the provider's environment variable (or the Model's api_key_env)",
    403: "the key is not allowed to use this model",
    404: "check the model name and the base_url",
}


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """The server's `Retry-After` (or `retry-after-ms`) advice, in seconds."""
    if not headers:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return max(email.utils.mktime_tz(parsed) - time.time(), 0.0)


def status_error(provider: str, status: int, message: str, headers: Any) -> ProviderError:
    retryable = status in RETRY or (status >= 500 and status not in NEVER_RETRY)
    return ProviderError(
        f"{provider} returned HTTP {status}: {message}",
        retryable=retryable,
        status=status,
        retry_after=retry_after_seconds(headers) if retryable else None,
        hint=_HINTS.get(status),
    )


def transport_error(provider: str, what: str) -> ProviderError:
    return ProviderError(f"{provider}: {what}", retryable=True)


def error_message(exc: Any) -> str:
    """The server's own error message from an SDK status error, when it sent one."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(getattr(exc, "message", exc))


_TRANSPORT_MODULES = ("httpx", "httpx2", "httpcore", "h11", "h2", "anyio", "ssl")


def is_transport_failure(exc: BaseException) -> bool:
    """Whether an exception came from the network stack under an SDK (a dropped connection, a
    protocol error mid-stream) rather than from afctl's own code."""
    if isinstance(exc, (OSError, EOFError, TimeoutError)):
        return True
    return any(cls.__module__.split(".")[0] in _TRANSPORT_MODULES for cls in type(exc).__mro__)


def translate(provider: str, sdk: Any, exc: Exception) -> ProviderError:
    """The `ProviderError` for an exception from an official SDK (`openai` or `anthropic`,
    which share their exception classes' names and meanings).

    Raises:
        Exception: `exc` itself, when it is neither an API nor a transport failure (a bug
            should surface as one, not be retried as a network error).
    """
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, sdk.APIStatusError):
        return status_error(provider, exc.status_code, error_message(exc), exc.response.headers)
    if isinstance(exc, sdk.APITimeoutError):
        return transport_error(provider, "the request timed out")
    if isinstance(exc, sdk.APIConnectionError):
        url = getattr(getattr(exc, "request", None), "url", None)
        where = f" to {url}" if url is not None else ""
        return transport_error(provider, f"connection{where} failed ({exc.__cause__ or exc})")
    if isinstance(exc, (sdk.APIResponseValidationError, ValueError)):
        return transport_error(provider, f"unreadable response ({exc})")
    if is_transport_failure(exc):
        return transport_error(provider, f"{type(exc).__name__}: {exc}")
    raise exc

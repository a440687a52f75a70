"""What a webhook request becomes: its length and signature checked, its JSON body mapped to
the workflow's inputs.

Two signature schemes (a trigger's `signature`), both HMAC-SHA256 with the trigger's secret:

- `afctl` (the default, like Stripe's and Slack's): `X-Afctl-Timestamp: <unix seconds>` and
  `X-Afctl-Signature: sha256=<hex of HMAC(secret, "<timestamp>." + body)>`. A request more
  than REPLAY_WINDOW_S away from the server's clock is refused, and so is a signature seen
  before: a captured request cannot be replayed.
- `github`: `X-Hub-Signature-256: sha256=<hex of HMAC(secret, body)>` with GitHub's
  `X-GitHub-Delivery` id, each id accepted once.

The headers are checked before the body is read, and the body is read only up to MAX_BODY
(a length that is missing, not a number, or too big is refused first).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

MAX_BODY = 1_000_000
REPLAY_WINDOW_S = 300
SCHEMES = ("afctl", "github")
TIMESTAMP = "x-afctl-timestamp"
SIGNATURE = "x-afctl-signature"
GITHUB_SIGNATURE = "x-hub-signature-256"
GITHUB_DELIVERY = "x-github-delivery"


def sign(secret: str, body: bytes) -> str:
    """The `X-Hub-Signature-256` value a GitHub-style sender computes (HMAC of the body)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers an `afctl`-scheme sender adds (timestamp, and the HMAC of both)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    message = stamp.encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return {"X-Afctl-Timestamp": stamp, "X-Afctl-Signature": f"sha256={digest}"}


class Refused(Exception):
    """A request that starts nothing: its HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def content_length(headers: dict[str, str]) -> int:
    """The request's body length, once it is one afctl reads.

    Raises:
        Refused: chunked, missing, not a number, or over MAX_BODY.
    """
    if "transfer-encoding" in headers:
        raise Refused(411, "send the body with a Content-Length, not chunked")
    text = headers.get("content-length")
    if text is None:
        raise Refused(411, "a Content-Length is required")
    if not text.strip().isdigit() or len(text.strip()) > 12:
        raise Refused(400, "the Content-Length is not a number of bytes")
    length = int(text.strip())
    if length > MAX_BODY:
        raise Refused(413, f"the body is over {MAX_BODY} bytes")
    return length


@dataclass(frozen=True)
class Signature:
    """A request's claim to come from the sender: what makes it unique (for replays)."""

    nonce: str


def check_headers(scheme: str, headers: dict[str, str], now: float | None = None) -> Signature:
    """What a signed request must carry, checked before its body is read.

    Raises:
        Refused: 401 when a header is missing, or the timestamp is outside the window.
    """
    if scheme == "github":
        if GITHUB_SIGNATURE not in headers or not headers.get(GITHUB_DELIVERY):
            raise Refused(401, "a signed GitHub webhook needs X-Hub-Signature-256 and "
                               "X-GitHub-Delivery")  # fmt: skip
        return Signature(headers[GITHUB_DELIVERY].strip()[:200])
    stamp, signature = headers.get(TIMESTAMP, ""), headers.get(SIGNATURE, "")
    if not stamp or not signature:
        raise Refused(401, "the request is not signed (X-Afctl-Timestamp, X-Afctl-Signature)")
    if not stamp.strip().isdigit() or len(stamp.strip()) > 12:
        raise Refused(401, "X-Afctl-Timestamp is not a number of seconds")
    clock = time.time() if now is None else now
    if abs(clock - int(stamp.strip())) > REPLAY_WINDOW_S:
        raise Refused(401, f"the signature's timestamp is more than {REPLAY_WINDOW_S} s away "
                           "from this server's clock")  # fmt: skip
    return Signature(signature.strip()[:200])


def signed_correctly(secret: str, body: bytes, headers: dict[str, str], scheme: str) -> bool:
    if scheme == "github":
        return hmac.compare_digest(headers.get(GITHUB_SIGNATURE, "").strip(), sign(secret, body))
    expected = signed_headers(secret, body, int(headers.get(TIMESTAMP, "0").strip() or 0))
    return hmac.compare_digest(headers.get(SIGNATURE, "").strip(), expected["X-Afctl-Signature"])


def inputs_of(body: bytes, headers: dict[str, str], path: str, mapping: Any) -> dict[str, Any]:
    """The workflow inputs of a request: the JSON body itself, or the trigger's `input`
    templates rendered over `event` (`event.body`, `event.headers`, `event.path`).

    Raises:
        Refused: the body is not JSON, or the mapping does not give an object.
    """
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise Refused(400, "the body is not JSON") from None
    except RecursionError:
        raise Refused(400, "the body's JSON nests too deeply") from None
    if not mapping:
        if not isinstance(data, dict):
            raise Refused(422, "the body must be a JSON object of inputs")
        return data
    from afctl.runtime.workflow import StepFailed, render_input

    try:
        inputs = render_input(mapping, {"event": {"body": data, "headers": headers, "path": path}},
                              "trigger input")  # fmt: skip
    except StepFailed as exc:
        raise Refused(422, exc.message) from None
    if not isinstance(inputs, dict):
        raise Refused(422, "the trigger's input must give a mapping")
    return inputs

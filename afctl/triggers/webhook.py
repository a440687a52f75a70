"""What a webhook request becomes: its signature checked (HMAC-SHA256 of the body, in
`X-Hub-Signature-256` or `X-Signature-256` as `sha256=<hex>`, the convention GitHub and many
senders use), its JSON body mapped to the workflow's inputs."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

MAX_BODY = 1_000_000
SIGNATURE_HEADERS = ("x-hub-signature-256", "x-signature-256")


def sign(secret: str, body: bytes) -> str:
    """The signature header value a sender computes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_correctly(secret: str, body: bytes, headers: dict[str, str]) -> bool:
    given = next((headers[h] for h in SIGNATURE_HEADERS if h in headers), "")
    return hmac.compare_digest(given.strip(), sign(secret, body))


class Refused(Exception):
    """A request that starts nothing: its HTTP status and why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


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

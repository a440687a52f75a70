"""What a server shows to whom: the addresses it may listen on, who may scrape `/metrics`,
and what it says out loud before it listens beyond this machine."""

from __future__ import annotations

import hmac
import os

from afctl.errors import UsageError
from afctl.server.problems import Problem
from afctl.triggers.definitions import Trigger

LOOPBACK = ("127.0.0.1", "::1", "localhost")
METRICS_TOKEN_ENV = "AFCTL_METRICS_TOKEN"


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def check_bind(host: str, *, auth_configured: bool, insecure_no_auth: bool) -> None:
    """Refuse to listen where others can reach an API nobody has to log in to.

    Raises:
        UsageError: `--insecure-no-auth` off loopback, or another address without any way
            to authenticate (no active API key, no JWT settings).
    """
    if is_loopback(host):
        return
    if insecure_no_auth:
        raise UsageError(f"--insecure-no-auth serves only this machine, not {host}",
                         hint="listen on 127.0.0.1, or set up keys or JWTs and drop "
                              "--insecure-no-auth")  # fmt: skip
    if not auth_configured:
        raise UsageError(
            f"afctl serve will not listen on {host} with no way to authenticate callers",
            hint="create an API key (afctl auth keys create --role runner) or set "
                 "AFCTL_JWT_SECRET / --jwks with --jwt-issuer and --jwt-audience",
        )  # fmt: skip


def metrics_denied(token: str | None, authorization: str | None, client: str) -> Problem | None:
    """Why a /metrics request is refused: with AFCTL_METRICS_TOKEN set it needs that bearer
    token; without it, only this machine may scrape."""
    if token is not None:
        if hmac.compare_digest((authorization or "").strip(), f"Bearer {token}"):
            return None
        return Problem(401, f"/metrics needs Authorization: Bearer <{METRICS_TOKEN_ENV}>")
    if is_loopback(client):
        return None
    return Problem(403, f"/metrics is served to this machine only; set {METRICS_TOKEN_ENV} "
                        "to let others scrape it with a bearer token")  # fmt: skip


def exposure_warnings(host: str, triggers: list[Trigger]) -> list[str]:
    """What a server listening on `host` exposes to other machines, said before it starts."""
    if is_loopback(host):
        return []
    warnings = [f"afctl serve listens on {host}: other machines can reach its API and webhooks"]
    unsigned = [str(t.spec["path"]) for t in triggers if t.type == "webhook"
                and not t.spec.get("secret")]  # fmt: skip
    if unsigned:
        warnings.append("unsigned webhooks anyone there can call: " + ", ".join(unsigned)
                        + " (give them a secret)")  # fmt: skip
    if not os.environ.get(METRICS_TOKEN_ENV):
        warnings.append(f"/metrics answers only this machine until {METRICS_TOKEN_ENV} is set")
    return warnings

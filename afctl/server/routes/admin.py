"""`/v1/keys` and `/v1/audit`: API keys of the server's environment, and who changed what."""

from __future__ import annotations

from typing import Any

from afctl.auth.keys import ROLES
from afctl.server.api import API, Call, json_response, obj

LIST = {"type": "array", "items": {"type": "object"}}


@API.route("GET", "/v1/keys", role="admin", tag="admin",
           summary="The API keys (never the keys themselves: their prefix, role and state)",
           response=LIST)  # fmt: skip
async def list_keys(call: Call) -> Any:
    from afctl.ids import utc_now

    now = utc_now()
    keys = call.server.context.services.auth.keys()
    return [{**k.to_dict(), "state": k.state(now)} for k in keys if k.env == call.env]


@API.route("POST", "/v1/keys", role="admin", action="keys.create", tag="admin",
           summary="Make an API key for the server's environment; the answer holds the key, "
                   "shown this once",
           body=obj({"role": {"type": "string", "enum": list(ROLES)},
                     "name": {"type": "string", "minLength": 1, "maxLength": 100},
                     "expires_in_s": {"type": "number", "exclusiveMinimum": 0,
                                      "maximum": 10 * 365 * 86400}}, ("role",)),
           response={"type": "object"}, status=201)  # fmt: skip
async def create_key(call: Call) -> Any:
    assert call.principal is not None
    key, secret = call.server.context.services.auth.create_key(
        call.body["role"], name=call.body.get("name"), expires_in_s=call.body.get("expires_in_s"),
        created_by=call.principal.who,
    )  # fmt: skip
    call.target = f"key/{key.name or key.id}"
    return json_response({**key.to_dict(), "key": secret}, 201, {"cache-control": "no-store"})


@API.route("DELETE", "/v1/keys/{key}", role="admin", action="keys.revoke", tag="admin",
           summary="Revoke a key (by id, id prefix or name); it stops working at once",
           response={"type": "object"})  # fmt: skip
async def revoke_key(call: Call) -> Any:
    from afctl.server.problems import Problem, missing

    reference = call.params["key"]
    call.target = f"key/{reference}"
    auth = call.server.context.services.auth
    theirs = [k for k in auth.keys() if k.env != call.env  # noqa: SIM118
              and (k.id.startswith(reference) or k.name == reference)]  # fmt: skip
    if theirs:
        raise Problem(403, f"that key belongs to environment {theirs[0].env}")
    with missing():
        key = auth.revoke_key(reference)
    return key.to_dict()


@API.route("GET", "/v1/audit", role="admin", tag="admin",
           summary="The latest audit records of the server's environment, oldest first",
           query={"limit": {"type": "integer", "minimum": 1, "maximum": 10_000}},
           response=LIST)  # fmt: skip
async def audit(call: Call) -> Any:
    call.server.flush_audit()
    records = call.server.context.services.auth.audit_records(
        limit=call.query.get("limit", 100), env=call.env
    )
    return [r.to_dict() for r in records]

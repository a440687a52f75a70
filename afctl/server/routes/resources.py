"""`/v1/resources`, `/v1/apply`: the applied state of the server's environment, read and
changed with the same semantics, locks and environments as the CLI."""

from __future__ import annotations

from typing import Any

from afctl.server.api import API, Call, obj
from afctl.server.problems import Problem, missing

LIST = {"type": "array", "items": {"type": "object"}}
OUTCOME = {"type": "object", "properties": {"applied": {"type": "boolean"},
                                            "plan": {"type": "object"}},
           "required": ["applied", "plan"]}  # fmt: skip
RELATIVE = "^(?![/~])(?!.*(^|/)[.][.](/|$))[^\\x00-\\x1f]{1,300}$"
FILES = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 2000,
    "propertyNames": {"pattern": RELATIVE},
    "additionalProperties": {"type": "string", "maxLength": 1_000_000},
    "description": "Manifest files by their path relative to the sender's repository root",
}
GIVEN = {"type": "array", "items": {"type": "string", "pattern": RELATIVE}, "maxItems": 100,
         "description": "The paths the sender was given (-f), relative to its root: they name "
                        "the source set (default: .)"}  # fmt: skip
LOCK = {"type": "number", "minimum": 0, "maximum": 600,
        "description": "Seconds to wait for the workspace lock"}  # fmt: skip


def uploaded(body: dict[str, Any]) -> Any:
    """The manifests a request sent, to plan, apply or evaluate as if read from files."""
    from afctl.manifests.discovery import Uploaded

    files = tuple((name, text.encode()) for name, text in sorted(body["files"].items()))
    return Uploaded(files, tuple(body.get("given") or ["."]))


def _kind(text: str) -> str:
    from afctl.manifests.kinds import find_kind

    with missing():
        return find_kind(text)


@API.route("GET", "/v1/resources", role="viewer", tag="resources",
           summary="Applied resources, optionally of one kind or label selector",
           query={"kind": {"type": "string", "maxLength": 50},
                  "selector": {"type": "string", "maxLength": 500}},
           response=LIST)  # fmt: skip
async def list_resources(call: Call) -> Any:
    state = call.server.context.services.state
    found = state.get(call.query.get("kind"), None, call.query.get("selector"))
    return [r.to_dict() for r in found]


@API.route("GET", "/v1/resources/{kind}/{name}", role="viewer", tag="resources",
           summary="One applied resource", response={"type": "object"})  # fmt: skip
async def get_resource(call: Call) -> Any:
    state = call.server.context.services.state
    with missing():
        (found,) = state.get(_kind(call.params["kind"]), call.params["name"])
    return found.to_dict()


@API.route("GET", "/v1/resources/{kind}/{name}/describe", role="viewer", tag="resources",
           summary="A resource with its revisions and the apply that made it",
           response={"type": "object"})  # fmt: skip
async def describe_resource(call: Call) -> Any:
    state = call.server.context.services.state
    with missing():
        found = state.describe(_kind(call.params["kind"]), call.params["name"])
    return found.to_dict()


@API.route("GET", "/v1/resources/{kind}/{name}/history", role="viewer", tag="resources",
           summary="Every revision of a resource, deletions included", response=LIST)  # fmt: skip
async def resource_history(call: Call) -> Any:
    state = call.server.context.services.state
    with missing():
        revisions = state.history(_kind(call.params["kind"]), call.params["name"])
    return [r.to_dict() for r in revisions]


@API.route("DELETE", "/v1/resources/{kind}/{name}", role="admin", action="resources.delete",
           tag="resources", summary="Remove a resource from the applied state (its history "
                                    "stays)", query={"lock_timeout": LOCK},
           response=OUTCOME)  # fmt: skip
async def delete_resource(call: Call) -> Any:
    kind, name = _kind(call.params["kind"]), call.params["name"]
    call.target = f"{kind.lower()}/{name}"
    state = call.server.context.services.state
    outcome = state.delete([(kind, name)], lock_timeout=call.query.get("lock_timeout", 10),
                           command=f"API DELETE {call.target}")  # fmt: skip
    return outcome.to_dict()


@API.route("POST", "/v1/resources/{kind}/{name}/rollback", role="admin",
           action="resources.rollback", tag="resources",
           summary="Apply an earlier revision of a resource again, as a new revision",
           body=obj({"to": {"type": "integer", "minimum": 1}, "lock_timeout": LOCK}, ("to",)),
           response=OUTCOME)  # fmt: skip
async def rollback_resource(call: Call) -> Any:
    kind, name = _kind(call.params["kind"]), call.params["name"]
    call.target = f"{kind.lower()}/{name}@{call.body['to']}"
    state = call.server.context.services.state
    outcome = state.rollback(kind, name, call.body["to"],
                             lock_timeout=call.body.get("lock_timeout", 10),
                             command=f"API rollback {call.target}")  # fmt: skip
    return outcome.to_dict()


@API.route("POST", "/v1/plan", role="viewer", tag="resources",
           summary="What applying these manifest files would change (writes nothing)",
           body=obj({"files": FILES, "given": GIVEN, "prune": {"type": "boolean"}}, ("files",)),
           response={"type": "object"})  # fmt: skip
async def plan(call: Call) -> Any:
    state = call.server.context.services.state
    return state.plan(uploaded(call.body), prune=call.body.get("prune", False)).to_dict()


@API.route("POST", "/v1/apply", role="admin", action="resources.apply", tag="resources",
           summary="Apply manifest files (planned under the workspace lock and applied in one "
                   "transaction), or a saved plan (refused when the state moved on since)",
           body={**obj({"files": FILES, "given": GIVEN, "prune": {"type": "boolean"},
                        "plan": {"type": "object"}, "lock_timeout": LOCK}),
                 "oneOf": [{"required": ["files"]}, {"required": ["plan"]}]},
           response=OUTCOME)  # fmt: skip
async def apply_plan(call: Call) -> Any:
    from afctl.state.plan import Plan

    state = call.server.context.services.state
    if "files" in call.body:
        call.target = "files: " + ", ".join(call.body.get("given") or ["."])
        outcome = state.apply(uploaded(call.body), prune=call.body.get("prune", False),
                              lock_timeout=call.body.get("lock_timeout", 10),
                              command="API apply")  # fmt: skip
        return outcome.to_dict()
    try:
        plan = Plan.from_dict(call.body["plan"])
    except (KeyError, TypeError, ValueError) as exc:
        raise Problem(422, f"body/plan: not a plan made by afctl plan --out ({exc})") from None
    call.target = f"plan/{plan.plan_id}"
    outcome = state.apply_saved_plan(plan, lock_timeout=call.body.get("lock_timeout", 10),
                                     command="API apply PLAN")  # fmt: skip
    return outcome.to_dict()

"""`/v1/blueprints`: the installed blueprints; install one from the workspace's registries;
uninstall."""

from __future__ import annotations

from typing import Any

from afctl.server.api import API, Call, obj

REFERENCE = "^[a-z0-9][a-z0-9-]{0,63}(@[0-9A-Za-z.^~<>=*, |-]{1,50})?$"
"""NAME or NAME@RANGE: never a path (the server installs from registries only)."""


@API.route("GET", "/v1/blueprints", role="viewer", tag="blueprints",
           summary="The installed blueprints: version, values, digest, resources, trust",
           response={"type": "object"})  # fmt: skip
async def list_blueprints(call: Call) -> Any:
    return call.server.context.services.blueprints.installed()


@API.route("POST", "/v1/blueprints", role="operator", action="blueprints.install",
           tag="blueprints",
           summary="Install NAME[@RANGE] from the workspace's configured registries (afctl.lock "
                   "decides the version it holds); its python tools stay off until trusted",
           body=obj({"ref": {"type": "string", "pattern": REFERENCE},
                     "set": {"type": "array", "items": {"type": "string", "maxLength": 1000},
                             "maxItems": 100},
                     "dry_run": {"type": "boolean"}}, ("ref",)),
           response={"type": "object"})  # fmt: skip
async def install_blueprint(call: Call) -> Any:
    call.target = f"blueprint/{call.body['ref']}"
    outcome, prepared = call.server.context.services.blueprints.install_from_registry(
        call.body["ref"], sets=call.body.get("set", []), dry_run=call.body.get("dry_run", False),
    )  # fmt: skip
    blueprint = prepared.blueprint
    return {**outcome.to_dict(), "blueprint": blueprint.name, "version": str(blueprint.version),
            "trusted": prepared.trusted}  # fmt: skip


@API.route("DELETE", "/v1/blueprints/{name}", role="operator", action="blueprints.uninstall",
           tag="blueprints",
           summary="Delete exactly the resources a blueprint installed, and forget it",
           response={"type": "object"})  # fmt: skip
async def uninstall_blueprint(call: Call) -> Any:
    from afctl.errors import UsageError
    from afctl.server.problems import Problem

    name = call.params["name"]
    call.target = f"blueprint/{name}"
    try:
        outcome = call.server.context.services.blueprints.uninstall(name)
    except UsageError as exc:
        if "not installed" in exc.message:
            raise Problem(404, exc.message, hint=exc.hint) from None
        raise
    return outcome.to_dict()

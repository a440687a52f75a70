"""Replay (offline and live), run diffs, usage, stats and read-only SQL over the prompt log."""

from __future__ import annotations

from typing import Any

from afctl.errors import UsageError
from afctl.server.api import API, Call, obj
from afctl.server.problems import Problem

RUN = {"type": "string", "minLength": 1, "maxLength": 100}
AGE = {"type": "string", "pattern": "^[0-9]{1,6}[smhdw]$", "description": "30d, 12h, ..."}
TABLE = {"type": "object", "properties": {"columns": {"type": "array"},
                                          "rows": {"type": "array"}},
         "required": ["columns", "rows"]}  # fmt: skip


def _run_missing(exc: UsageError) -> Problem:
    if exc.message.startswith("no run"):
        return Problem(404, exc.message, hint=exc.hint)
    return Problem(400, exc.message, hint=exc.hint)


@API.route("POST", "/v1/runs/{run_id}/replay", role="viewer", action="runs.replay", tag="replay",
           summary="Replay a run offline from the prompt log (nothing is written; no model or "
                   "tool is called): reproduced, or where it first diverged",
           body=obj({"revision": {"type": "string", "enum": ["recorded", "current"]}}),
           response={"type": "object"})  # fmt: skip
async def replay(call: Call) -> Any:
    run_id = call.params["run_id"]
    call.target = f"run/{run_id}"
    try:
        report = await call.server.context.services.replay.replay(
            run_id, revision=call.body.get("revision", "recorded"))  # fmt: skip
    except UsageError as exc:
        raise _run_missing(exc) from None
    return report.to_dict()


@API.route("POST", "/v1/runs/{run_id}/replay-live", role="operator", action="runs.replay_live",
           tag="replay", summary="Run a recorded run's input again for real (optionally on "
                                 "another model), as a new run, with its diff to the original",
           body=obj({"model": {"type": "string", "maxLength": 200},
                     "params": {"type": "object", "maxProperties": 20},
                     "revision": {"type": "string", "enum": ["recorded", "current"]}}),
           response={"type": "object"})  # fmt: skip
async def replay_live(call: Call) -> Any:
    run_id = call.params["run_id"]
    call.target = f"run/{run_id}"
    try:
        result, diff = await call.server.context.services.replay.replay_live(
            run_id, model=call.body.get("model"), params=call.body.get("params"),
            revision=call.body.get("revision", "recorded"),
        )  # fmt: skip
    except UsageError as exc:
        raise _run_missing(exc) from None
    return {"run": result.to_dict(), "diff": diff.to_dict()}


@API.route("GET", "/v1/runs/{run_id}/diff/{other}", role="viewer", tag="replay",
           summary="Two runs compared step by step (output, tools, cost, latency)",
           response={"type": "object"})  # fmt: skip
async def diff_runs(call: Call) -> Any:
    try:
        diff = call.server.context.services.replay.diff_runs(call.params["run_id"],
                                                            call.params["other"])  # fmt: skip
    except UsageError as exc:
        raise _run_missing(exc) from None
    return diff.to_dict()


@API.route("GET", "/v1/stats", role="viewer", tag="analytics",
           summary="Runs, success, latency, tokens and cost from the prompt log, grouped",
           query={"by": {"type": "string", "maxLength": 200,
                         "description": "Comma-separated: agent, model, day, status, env, "
                                        "target, label:KEY"},
                  "since": AGE, "include_replays": {"type": "boolean"}},
           response=TABLE)  # fmt: skip
async def stats(call: Call) -> Any:
    by = [b.strip() for b in str(call.query.get("by", "")).split(",") if b.strip()]
    table = call.server.context.services.analytics.stats(
        by, since=call.query.get("since"), include_replays=call.query.get("include_replays",
                                                                          False))  # fmt: skip
    return {"columns": table.columns, "rows": table.records()}


@API.route("POST", "/v1/query", role="viewer", tag="analytics",
           summary="One read-only SELECT over the prompt log's views (runs, events, "
                   "model_calls, tool_calls, evals); anything else is refused",
           body=obj({"sql": {"type": "string", "minLength": 1, "maxLength": 20_000}}, ("sql",)),
           response=TABLE)  # fmt: skip
async def query(call: Call) -> Any:
    table = call.server.context.services.analytics.query(call.body["sql"])
    return {"columns": table.columns, "rows": table.records()}


@API.route("GET", "/v1/usage", role="viewer", tag="analytics",
           summary="Tokens, cost and amounts due of installed blueprints' runs",
           query={"by": {"type": "string", "maxLength": 100}, "since": AGE},
           response={"type": "array", "items": {"type": "object"}})  # fmt: skip
async def usage(call: Call) -> Any:
    by = [b.strip() for b in str(call.query.get("by", "blueprint")).split(",") if b.strip()]
    return call.server.context.services.blueprints.usage(by, since=call.query.get("since"))

"""`/v1/runs`: start agent and workflow runs (waiting for them, or in the background), follow
them as server-sent events, list and read them, cancel, resume, approve or deny, and sessions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from afctl.errors import UsageError
from afctl.server.api import API, Call, json_response, obj
from afctl.server.problems import Problem, missing
from afctl.server.runs import Feed, ServedRun, queued_work, run_hooks, run_work

if TYPE_CHECKING:
    from afctl.workers.jobs import Job
    from afctl.workers.queueing import RunQueue

HEARTBEAT_S = 15.0
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
VARIABLES = {"type": "object", "additionalProperties": {"type": "string", "maxLength": 10_000},
             "maxProperties": 100}  # fmt: skip
START = obj(
    {
        "target": {"type": "string", "pattern": "^(agent|workflow)/[A-Za-z0-9][A-Za-z0-9_.-]*$",
                   "description": "agent/NAME or workflow/NAME, applied in the server's "
                                  "environment"},
        "input": {"description": "An agent's input (text), or a workflow's inputs (an object)",
                  "anyOf": [{"type": "string", "maxLength": 500_000}, {"type": "object"}]},
        "session": NAME,
        "variables": VARIABLES,
        "model": NAME,
        "background": {"type": "boolean", "default": False,
                       "description": "Answer 202 at once instead of waiting for the result"},
        "typed": {"type": "boolean", "default": True,
                  "description": "A workflow's inputs are typed already (false: text values, "
                                 "read as YAML scalars where its schema wants another type, "
                                 "as `afctl run --input k=v` does)"},
    },
    ("target", "input"),
)  # fmt: skip
RESULT = {"type": "object", "properties": {"run_id": {"type": "string"},
                                           "status": {"type": "string"}},
          "required": ["run_id", "status"]}  # fmt: skip
RUN_ID = {"run_id": {"type": "string"}}
FINISH = obj({"background": {"type": "boolean", "default": False}})


def _check_target(call: Call, target: str, user_input: Any) -> str:
    """The kind of run `target` is, once it is applied and `user_input` fits it."""
    services = call.server.context.services
    with missing():
        kind, _ = services.runs.available(target, services.state.catalog())
    if kind == "Agent" and not isinstance(user_input, str):
        raise Problem(422, "body/input: an agent's input is text")
    if kind == "Workflow" and not isinstance(user_input, dict):
        raise Problem(422, "body/input: a workflow's inputs are an object")
    return kind


def start_run(call: Call, body: dict[str, Any], *, text: bool = True) -> ServedRun:
    """Start the run `body` asks for (or find the one its Idempotency-Key started)."""
    target = body["target"]
    kind = _check_target(call, target, body["input"])
    assert call.principal is not None
    manager = call.server.runs
    key = call.request.headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= 200:
        raise Problem(422, "the Idempotency-Key must be 1 to 200 characters")
    earlier = manager.remembered(call.principal.key, key, body)
    if earlier is not None:
        served = manager.live.get(earlier)
        if served is not None:
            return served
        return ServedRun(earlier, kind.lower(), target, call.principal.key, None,
                         manager.feed(earlier))  # fmt: skip
    options: dict[str, Any] = {"variables": dict(body.get("variables") or {})}
    if kind == "Agent":
        options.update(session=body.get("session"), model=body.get("model"))
    idempotency = (key, body) if key is not None else None
    queue = call.server.queue
    if queue is not None and body.get("background"):
        job = _job(call, queue, kind, target, body, options)
        return manager.start(call.principal.key, kind.lower(), target, queued_work(queue, job),
                             idempotency=idempotency, run_id=job.run_id, queued=True)  # fmt: skip
    work = run_work(call.server.context.services.runs, kind, target, body["input"], text=text,
                    typed=body.get("typed", True), **options)  # fmt: skip
    return manager.start(call.principal.key, kind.lower(), target, work, idempotency=idempotency)


def _job(call: Call, queue: RunQueue, kind: str, target: str, body: dict[str, Any],
         options: dict[str, Any]) -> Job:  # fmt: skip
    """The job of a background run for the workers (a workflow's inputs are checked here, as
    in-process: a mistake is the caller's 400, not a failed run).

    Raises:
        UsageError: the inputs do not fit.
    """
    services = call.server.context.services
    catalog = services.state.catalog()
    given = body["input"]
    if kind == "Workflow":
        _, given = services.runs.workflow_inputs(target, catalog, dict(given),
                                                 typed=body.get("typed", True))  # fmt: skip
    environment = services.runs.environment(catalog, options["variables"])
    return queue.job(kind, target.split("/", 1)[1], environment, given, env=call.server.env,
                     **options)  # fmt: skip


async def answer(call: Call, served: ServedRun, background: bool) -> Any:
    """200 with the result once the run ends within the request timeout; else (or when asked
    for the background) 202 with where to follow it."""
    call.target = f"run/{served.run_id} ({served.target})"
    if not background:
        await call.server.runs.wait(served, call.server.limits.request_timeout_s)
    link = f"/v1/runs/{served.run_id}"
    if served.feed.done and len(served.feed.events) > served.after:
        return json_response(served.feed.events[-1][2], 200, {"location": link})
    events = f"{link}/events" + (f"?after={served.after}" if served.after else "")
    return json_response(
        {"run_id": served.run_id, "status": "running", "target": served.target,
         "after": served.after, "links": {"self": link, "events": events}},
        202, {"location": link},
    )  # fmt: skip


@API.route("POST", "/v1/runs", role="runner", action="runs.start", tag="runs",
           summary="Start an agent or workflow run, and wait for it or leave it in the "
                   "background (Idempotency-Key: the same key returns the same run)",
           body=START, response=RESULT, statuses=(202,))  # fmt: skip
async def start(call: Call) -> Any:
    served = start_run(call, call.body)
    return await answer(call, served, bool(call.body.get("background")))


@API.route("GET", "/v1/runs", role="viewer", tag="runs", summary="Recent runs, newest first",
           query={"agent": NAME, "status": {"type": "string", "enum": [
               "running", "succeeded", "failed", "blocked", "interrupted", "awaiting_approval"]},
               "limit": {"type": "integer", "minimum": 1, "maximum": 1000}},
           response={"type": "array", "items": {"type": "object"}})  # fmt: skip
async def list_runs(call: Call) -> Any:
    found = call.server.context.services.logs.runs(
        agent=call.query.get("agent"), status=call.query.get("status"),
        limit=call.query.get("limit", 20),
    )  # fmt: skip
    return [r.to_dict() for r in found]


def transcript(call: Call, run_id: str) -> Any:
    with missing():
        return call.server.context.services.logs.transcript(run_id)


@API.route("GET", "/v1/runs/{run_id}", role="viewer", tag="runs",
           summary="A run with its input, output and every event (as afctl runs show -o json)",
           response={"type": "object"})  # fmt: skip
async def get_run(call: Call) -> Any:
    run_id = call.params["run_id"]
    feed = call.server.runs.feeds.get(run_id)
    if feed is not None and not _logged(call, run_id):
        if feed.done:  # failed before it was recorded (a workflow's bad inputs)
            return feed.events[-1][2]
        served = call.server.runs.live.get(run_id)
        if served is not None and served.queued:  # no worker has taken it yet
            return {"run_id": run_id, "status": "queued", "target": served.target}
    return transcript(call, run_id).to_dict()


def _logged(call: Call, run_id: str) -> bool:
    try:
        call.server.context.services.logs.log.run(run_id)
    except UsageError:
        return False
    return True


@API.route("GET", "/v1/runs/{run_id}/events", role="viewer", tag="runs",
           summary="A run's events as server-sent events: text, tool_call, tool_result, "
                   "guardrail, handoff, approval_requested, error, result (reconnect with "
                   "Last-Event-ID to get what was missed)",
           query={"after": {"type": "integer", "minimum": 0}},
           media="text/event-stream")  # fmt: skip
async def events(call: Call) -> Any:
    from sse_starlette import EventSourceResponse

    run_id = call.params["run_id"]
    with missing():
        feed = call.server.runs.feed(run_id)
    last = call.request.headers.get("last-event-id", "")
    after = int(last) if last.isdigit() else int(call.query.get("after", 0))

    async def stream() -> AsyncIterator[dict[str, Any]]:
        async for number, kind, data in feed.follow(after):
            yield {"id": str(number), "event": kind,
                   "data": json.dumps(data, ensure_ascii=False, default=str)}  # fmt: skip

    return EventSourceResponse(stream(), ping=HEARTBEAT_S, headers={"cache-control": "no-store"})


@API.route("POST", "/v1/runs/{run_id}/cancel", role="operator", action="runs.cancel",
           tag="runs", summary="Interrupt a run this server is running, or (with workers) "
                               "one a worker runs (recorded interrupted)",
           response=RESULT, status=202)  # fmt: skip
async def cancel(call: Call) -> Any:
    run_id = call.params["run_id"]
    call.target = f"run/{run_id}"
    manager, queue = call.server.runs, call.server.queue
    served = manager.live.get(run_id)
    if queue is not None and served is not None and served.queued:
        await queue.cancel(run_id)  # its worker stops it at its next heartbeat
    elif not manager.cancel(run_id):
        record = transcript(call, run_id).run
        if queue is None or record.status != "running" or not record.worker:
            where = "this server" + (" or a worker" if queue is not None else "")
            raise Problem(409, f"run {record.id} is {record.status}, not running on {where}")
        await queue.cancel(record.id)
    return {"run_id": run_id, "status": "cancelling"}


@API.route("POST", "/v1/runs/{run_id}/resume", role="operator", action="runs.resume",
           tag="runs", summary="Go on with an interrupted run: a workflow from its last finished "
                               "step, an agent from its last recorded model answer",
           body=FINISH, response=RESULT, statuses=(202,))  # fmt: skip
async def resume(call: Call) -> Any:
    record = transcript(call, call.params["run_id"]).run
    runs = call.server.context.services.runs
    if record.status != "interrupted" or record.parent_id is not None:
        what = f"a step of run {record.parent_id}" if record.parent_id else record.status
        raise Problem(409, f"run {record.id} is {what}; only an interrupted run resumes "
                           "(a step resumes with its parent)")  # fmt: skip
    assert call.principal is not None

    async def work(feed: Feed, run_id: str) -> Any:
        return await runs.resume(run_id, hooks=run_hooks(feed), on_event=feed.on_event)

    served = call.server.runs.start(call.principal.key, record.kind, record.target, work,
                                    run_id=record.id)  # fmt: skip
    return await answer(call, served, bool(call.body.get("background")))


async def _decide(call: Call, deny: bool) -> Any:
    record = transcript(call, call.params["run_id"]).run
    if record.status != "awaiting_approval":
        raise Problem(409, f"run {record.id} is {record.status}, not awaiting approval")
    runs = call.server.context.services.runs
    assert call.principal is not None

    async def work(feed: Feed, run_id: str) -> Any:
        return await runs.approve(run_id, deny=deny, hooks=run_hooks(feed))

    served = call.server.runs.start(call.principal.key, "agent", record.target, work,
                                    run_id=record.id)  # fmt: skip
    return await answer(call, served, bool(call.body.get("background")))


@API.route("POST", "/v1/runs/{run_id}/approve", role="operator", action="runs.approve",
           tag="runs", summary="Approve the tool calls a paused run waits for; it goes on",
           body=FINISH, response=RESULT, statuses=(202,))  # fmt: skip
async def approve(call: Call) -> Any:
    return await _decide(call, deny=False)


@API.route("POST", "/v1/runs/{run_id}/deny", role="operator", action="runs.deny",
           tag="runs", summary="Deny the tool calls a paused run waits for; it goes on without "
                               "them", body=FINISH, response=RESULT, statuses=(202,))  # fmt: skip
async def deny(call: Call) -> Any:
    return await _decide(call, deny=True)


@API.route("GET", "/v1/sessions/{session}", role="viewer", tag="runs",
           summary="The messages of a session, oldest first",
           query={"limit": {"type": "integer", "minimum": 1, "maximum": 10_000}},
           response={"type": "object"})  # fmt: skip
async def session(call: Call) -> Any:
    name = call.params["session"]
    log = call.server.context.services.logs.log
    messages = log.sessions.messages(name, call.query.get("limit", 1000))
    if not messages:
        raise Problem(404, f"session {name!r} has no messages")
    return {"session": name, "messages": messages}

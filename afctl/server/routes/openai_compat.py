"""OpenAI-compatible endpoints: any OpenAI client or chat UI can talk to an applied agent.

- `GET /v1/models` lists the applied agents and workflows (`agent/support`).
- `POST /v1/chat/completions` runs one: the last user message is the input; the messages
  before it are the conversation so far, unless a session is named (header `X-Afctl-Session`,
  or the `user` field as `session:NAME`), in which case afctl keeps the conversation and only
  the last message is read. A workflow takes its inputs as a JSON object in the last message.
  Tools run on the server; the run is logged and replayable like any other, and its id is in
  the `X-Afctl-Run-Id` header (and the completion's id, `chatcmpl-<run id>`). With
  `stream: true` the answer comes as `chat.completion.chunk` events, then a usage chunk, then
  `[DONE]`. Fields of the request afctl has no use for (temperature, tools...) are ignored:
  the agent's manifest decides.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from afctl.server.api import API, Call, json_response
from afctl.server.problems import Problem
from afctl.server.runs import Feed, run_work

RUN_HEADER = "X-Afctl-Run-Id"
SESSION_HEADER = "x-afctl-session"
MESSAGE = {
    "type": "object",
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {
            "anyOf": [
                {"type": "string", "maxLength": 500_000},
                {"type": "null"},
                {"type": "array", "maxItems": 100},
            ]
        },
    },
    "required": ["role"],
}
CHAT = {
    "type": "object",
    "properties": {
        "model": {"type": "string", "minLength": 1, "maxLength": 200},
        "messages": {"type": "array", "items": MESSAGE, "minItems": 1, "maxItems": 1000},
        "stream": {"type": "boolean"},
        "user": {"type": "string", "maxLength": 256},
    },
    "required": ["model", "messages"],
    "description": "A Chat Completions request; fields not listed here are accepted and "
    "ignored (the agent's manifest decides its model parameters and tools).",
}
COMPLETION = {
    "type": "object",
    "properties": {"id": {"type": "string"}, "object": {"type": "string"},
                   "choices": {"type": "array"}, "usage": {"type": "object"}},
    "required": ["id", "object", "choices"],
}  # fmt: skip


@API.route("GET", "/v1/models", role="viewer", tag="openai",
           summary="The applied agents and workflows, as OpenAI models",
           response={"type": "object"})  # fmt: skip
async def models(call: Call) -> Any:
    state = call.server.context.services.state
    data = []
    for kind in ("Agent", "Workflow"):
        for resource in state.get(kind):
            created = int(_epoch(resource.applied_at))
            data.append({"id": f"{kind.lower()}/{resource.name}", "object": "model",
                         "created": created, "owned_by": "afctl"})  # fmt: skip
    return {"object": "list", "data": data}


def _epoch(timestamp: str) -> float:
    import datetime

    try:
        return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(str(part.get("text", "")) for part in content
                   if isinstance(part, dict) and part.get("type") == "text")  # fmt: skip


def _session(call: Call, body: dict[str, Any]) -> str | None:
    named = call.request.headers.get(SESSION_HEADER)
    user = str(body.get("user") or "")
    if named is None and user.startswith("session:"):
        named = user.removeprefix("session:")
    if named is not None and not 0 < len(named) <= 200:
        raise Problem(422, "the session name must be 1 to 200 characters")
    return named


@API.route("POST", "/v1/chat/completions", role="runner", action="chat.completions",
           tag="openai", summary="Run an agent or workflow as an OpenAI chat completion "
                                 "(streamed with stream: true)",
           body=CHAT, response=COMPLETION, media="application/json, text/event-stream")  # fmt: skip
async def chat_completions(call: Call) -> Any:
    from afctl.manifests.kinds import parse_ref
    from afctl.providers.types import Message

    body = call.body
    target = body["model"]
    try:
        kind, name = parse_ref(target)
    except Exception:
        raise Problem(
            404,
            f"model {target!r} is not an applied agent or workflow",
            hint="GET /v1/models lists them (agent/NAME)",
        ) from None
    if kind not in ("Agent", "Workflow"):
        raise Problem(404, f"model {target!r} is not an agent or workflow")
    messages = body["messages"]
    last = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    if last is None:
        raise Problem(422, "body/messages: there is no user message to answer")
    user_input = _text(messages[last].get("content"))
    session = _session(call, body)
    history = None
    if session is None and kind == "Agent":
        history = [Message("assistant" if m["role"] == "assistant" else "user",
                           _text(m.get("content")))
                   for m in messages[:last] if m["role"] in ("user", "assistant")]  # fmt: skip
    if kind == "Workflow":
        try:
            inputs = json.loads(user_input)
        except ValueError:
            inputs = None
        if not isinstance(inputs, dict):
            raise Problem(422, f"{target} takes its inputs as a JSON object in the last user "
                               "message")  # fmt: skip
    stream = bool(body.get("stream"))
    from afctl.server.routes.runs import _check_target

    _check_target(call, f"{kind.lower()}/{name}", inputs if kind == "Workflow" else user_input)
    assert call.principal is not None
    runs = call.server.context.services.runs
    work = (run_work(runs, kind, f"agent/{name}", user_input, text=stream, session=session,
                     history=history) if kind == "Agent" else
            run_work(runs, kind, f"workflow/{name}", inputs))  # fmt: skip
    served = call.server.runs.start(call.principal.key, kind.lower(), target, work)
    call.target = f"run/{served.run_id} ({target})"
    headers = {RUN_HEADER: served.run_id}
    created = int(time.time())
    if stream:
        return _streamed(served.feed, target, created, headers)
    await call.server.runs.wait(served, call.server.limits.request_timeout_s)
    if not served.feed.done:
        raise Problem(504, f"run {served.run_id} is still going; follow it at "
                           f"/v1/runs/{served.run_id}", headers=headers)  # fmt: skip
    final = served.feed.events[-1][2]
    content, finish = _ending(final, served.run_id)
    return json_response({
        "id": f"chatcmpl-{served.run_id}", "object": "chat.completion", "created": created,
        "model": target,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": finish, "logprobs": None}],
        "usage": _usage(final),
    }, 200, headers)  # fmt: skip


def _ending(final: dict[str, Any], run_id: str) -> tuple[str, str]:
    """(the answer, the finish reason) of a finished run; raises Problem when it has none."""
    status = final.get("status")
    if status == "succeeded":
        output = final.get("output")
        if output is None and "outputs" in final:  # a workflow
            output = json.dumps(final["outputs"], ensure_ascii=False)
        return str(output or ""), "stop"
    if status == "blocked":
        return str(final.get("output") or final.get("error") or ""), "content_filter"
    if status == "awaiting_approval":
        raise Problem(409, f"run {run_id} waits for a person to approve a tool call",
                      hint=f"POST /v1/runs/{run_id}/approve (or /deny)",
                      headers={RUN_HEADER: run_id})  # fmt: skip
    raise Problem(502, f"run {run_id} {status}: {final.get('error') or 'no answer'}",
                  kind="run-error", headers={RUN_HEADER: run_id})  # fmt: skip


def _usage(final: dict[str, Any]) -> dict[str, int]:
    usage = final.get("usage") or {}
    prompt = int(usage.get("input_tokens") or 0)
    completion = int(usage.get("output_tokens") or 0)
    if not usage and final.get("tokens"):
        completion = int(final["tokens"])
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}  # fmt: skip


def _streamed(feed: Feed, target: str, created: int, headers: dict[str, str]) -> Any:
    from starlette.responses import StreamingResponse

    chunk_id = f"chatcmpl-{feed.run_id}"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                "model": target,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                             "logprobs": None}]}  # fmt: skip
        return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"

    async def events() -> AsyncIterator[bytes]:
        yield chunk({"role": "assistant", "content": ""})
        said = False
        async for _, kind, data in feed.follow():
            if kind == "text":
                said = True
                yield chunk({"content": data["delta"]})
            elif kind == "result":
                try:
                    content, finish = _ending(data, feed.run_id)
                except Problem as problem:
                    error = {"error": {"message": problem.detail, "type": problem.kind,
                                       "run_id": feed.run_id}}  # fmt: skip
                    yield b"data: " + json.dumps(error).encode() + b"\n\n"
                    return
                if not said and content:
                    yield chunk({"content": content})
                yield chunk({}, finish)
                usage = {"id": chunk_id, "object": "chat.completion.chunk", "created": created,
                         "model": target, "choices": [], "usage": _usage(data)}  # fmt: skip
                yield b"data: " + json.dumps(usage).encode() + b"\n\n"
        yield b"data: [DONE]\n\n"

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={**headers, "cache-control": "no-store"})  # fmt: skip

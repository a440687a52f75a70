"""A fake model API on loopback: it speaks the OpenAI Chat Completions and Anthropic Messages
wire protocols (JSON and SSE streaming, tool calls, usage) and injects faults on request.

afctl's own tests drive the official SDKs against it, and so can yours: point a Model's
`base_url` at `LLMServer().start().url` (+ "/v1" for OpenAI). Queue what the next requests get
with `push(Reply(...))` (a reply, tool calls, or a fault: an HTTP status with headers, a
dropped connection mid-stream, a stream without a finish reason, a malformed chunk, a stall),
or set `responder` to decide from each request. Every request is recorded in `requests`.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    text: str | None = "ok"
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    input_tokens: int = 11
    output_tokens: int = 7
    # faults
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    drop_after_first_chunk: bool = False
    no_finish: bool = False
    malformed_chunk: bool = False
    malformed_start: bool = False
    """The stream opens with an event that is not JSON and has no event name (for Anthropic,
    in place of message_start: the SDK skips such an event)."""
    stall_s: float = 0.0
    raw_body: str | None = None
    """Sent as the (non-streamed) answer instead of a well-formed one: a malformed body."""
    error_message: str | None = None
    """With `status`: the error's message (a server that echoes what it was sent)."""
    no_usage: bool = False
    """Leave usage out (as some OpenAI-compatible servers do, streamed or not)."""


@dataclass
class Recorded:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class LLMServer:
    def __init__(self, latency_s: float = 0.0, port: int = 0) -> None:
        # long because the request handler is a class defined here, closing over the server
        # it answers for (http.server builds one handler per request from a class)
        self.queue: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.latency_s = latency_s
        self.default = Reply()
        self.responder: Callable[[dict[str, Any]], Reply] | None = None
        """Decides the reply from the request body when nothing is queued."""
        self.in_flight = 0
        self.peak_in_flight = 0
        """The most requests handled at once."""
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                # headers and body go out in separate writes: without this, Nagle's algorithm
                # and delayed ACKs add ~40 ms to every response
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                with server._lock:
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                try:
                    self.answer()
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def send_json(
                self, payload: bytes, status: int = 200, headers: dict[str, str] | None = None
            ) -> None:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)

            def answer(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append(
                        Recorded(self.path, body, {k.lower(): v for k, v in self.headers.items()})
                    )
                if self.path.endswith("/embeddings"):  # not from the queue of chat replies
                    self.send_json(json.dumps(embeddings(body)).encode())
                    return
                with server._lock:
                    if server.queue:
                        reply = server.queue.popleft()
                    elif server.responder is not None:
                        reply = server.responder(body)
                    else:
                        reply = server.default
                if server.latency_s:
                    time.sleep(server.latency_s)
                if reply.stall_s:
                    time.sleep(reply.stall_s)
                if reply.status is not None:
                    message = reply.error_message or f"injected {reply.status}"
                    error = {"error": {"message": message, "type": "test"}}
                    self.send_json(json.dumps(error).encode(), reply.status, reply.headers)
                    return
                anthropic = self.path.endswith("/messages")
                responses = self.path.endswith("/responses")
                if body.get("stream"):
                    if responses:
                        events = openai_response_events(body, reply)
                    elif anthropic:
                        events = anthropic_events(body, reply)
                    else:
                        events = openai_chunks(body, reply)
                    self.send_response(200)
                    self.send_header("content-type", "text/event-stream")
                    self.send_header("cache-control", "no-cache")
                    self.send_header("connection", "close")
                    self.end_headers()
                    for index, event in enumerate(events):
                        self.wfile.write(event.encode())
                        self.wfile.flush()
                        if reply.drop_after_first_chunk and index == 1:
                            self.connection.shutdown(2)  # the connection drops mid-stream
                            return
                    self.close_connection = True
                    return
                if reply.raw_body is not None:
                    self.send_json(reply.raw_body.encode())
                    return
                if responses:
                    document = openai_response(body, reply)
                elif anthropic:
                    document = anthropic_message(body, reply)
                else:
                    document = openai_completion(body, reply)
                self.send_json(json.dumps(document).encode())

        class Server(ThreadingHTTPServer):
            request_queue_size = 256  # socketserver's 5 refuses bursts of new connections

            def handle_error(self, request: Any, client_address: Any) -> None:
                # a client that hangs up mid-response (a test's timeout, a cancelled run) is
                # expected here; anything else is a bug in the fake and should be seen
                if not isinstance(sys.exc_info()[1], ConnectionError):
                    super().handle_error(request, client_address)

        self.httpd = Server(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> LLMServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def push(self, *replies: Reply) -> None:
        self.queue.extend(replies)


def openai_completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    calls = [
        {"id": f"call_{i}", "type": "function",
         "function": {"name": name, "arguments": json.dumps(args)}}
        for i, (name, args) in enumerate(reply.tool_calls)
    ]  # fmt: skip
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": body.get("model", "test"),
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": reply.text,
                    "tool_calls": calls or None,
                },
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        **({} if reply.no_usage else {"usage": {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
        }}),
    }  # fmt: skip


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI embeddings response: afctl's offline hashing vectors for each input."""
    from afctl.providers.offline import hashing_vector

    texts = body.get("input") or []
    texts = [texts] if isinstance(texts, str) else texts

    def encode(vector: list[float]) -> Any:
        if body.get("encoding_format") != "base64":  # what the SDK asks for by default
            return vector
        import array
        import base64

        return base64.b64encode(array.array("f", vector).tobytes()).decode()

    return {
        "object": "list",
        "model": body.get("model", "test"),
        "data": [
            {"object": "embedding", "index": i, "embedding": encode(hashing_vector(str(text)))}
            for i, text in enumerate(texts)
        ],
        "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
    }


def _sse(data: Any) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


def openai_chunks(body: dict[str, Any], reply: Reply) -> list[str]:
    base = {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 0,
            "model": body.get("model", "test")}  # fmt: skip
    events = [
        _sse(
            {
                **base,
                "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
            }
        )
    ]
    if reply.malformed_start:
        events.insert(0, "data: {broken\n\n")
    for piece in (reply.text or "").split(" ") if reply.text else []:
        events.append(
            _sse(
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"content": piece + " "}, "finish_reason": None}
                    ],
                }
            )
        )
    if reply.malformed_chunk:
        events.append("data: {this is not json\n\n")
    for i, (name, args) in enumerate(reply.tool_calls):
        arguments = json.dumps(args)
        half = len(arguments) // 2
        for part, first in ((arguments[:half], True), (arguments[half:], False)):
            function: dict[str, Any] = {"arguments": part}
            call: dict[str, Any] = {"index": i, "function": function}
            if first:
                call.update({"id": f"call_{i}", "type": "function"})
                function["name"] = name
            events.append(
                _sse(
                    {
                        **base,
                        "choices": [
                            {"index": 0, "delta": {"tool_calls": [call]}, "finish_reason": None}
                        ],
                    }
                )
            )
    if not reply.no_finish:
        finish = "tool_calls" if reply.tool_calls else "stop"
        events.append(
            _sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
        )
        usage = {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                 "total_tokens": reply.input_tokens + reply.output_tokens}  # fmt: skip
        if not reply.no_usage:
            events.append(_sse({**base, "choices": [], "usage": usage}))
        events.append(_sse("[DONE]"))
    return events


def _response_items(reply: Reply) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if reply.text:
        items.append(
            {"type": "message", "id": "msg_0", "status": "completed", "role": "assistant",
             "content": [{"type": "output_text", "text": reply.text, "annotations": []}]}
        )  # fmt: skip
    for i, (name, args) in enumerate(reply.tool_calls):
        items.append(
            {"type": "function_call", "id": f"fc_{i}", "call_id": f"call_{i}", "name": name,
             "arguments": json.dumps(args), "status": "completed"}
        )  # fmt: skip
    return items


def openai_response(
    body: dict[str, Any], reply: Reply, status: str = "completed"
) -> dict[str, Any]:
    """A Responses API response object (`no_finish` leaves it `in_progress`)."""
    return {
        "id": "resp_test",
        "object": "response",
        "created_at": 0,
        "status": "in_progress" if reply.no_finish else status,
        "model": body.get("model", "test"),
        "output": _response_items(reply),
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "usage": {
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }


def openai_response_events(body: dict[str, Any], reply: Reply) -> list[str]:
    """The Responses API's typed SSE events for a reply."""
    sequence = iter(range(1_000_000))

    def event(kind: str, **data: Any) -> str:
        data = {"type": kind, "sequence_number": next(sequence), **data}
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n"

    started = {**openai_response(body, reply), "status": "in_progress", "output": []}
    events = [event("response.created", response=started)]
    for index, item in enumerate(_response_items(reply)):
        if item["type"] == "message":
            events.append(
                event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "content": [], "status": "in_progress"},
                )
            )
            for piece in (reply.text or "").split(" "):
                events.append(
                    event(
                        "response.output_text.delta",
                        item_id=item["id"],
                        output_index=index,
                        content_index=0,
                        delta=piece + " ",
                    )
                )
        else:
            events.append(
                event(
                    "response.output_item.added",
                    output_index=index,
                    item={**item, "arguments": "", "status": "in_progress"},
                )
            )
            half = len(item["arguments"]) // 2
            for part in (item["arguments"][:half], item["arguments"][half:]):
                events.append(
                    event(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=part,
                    )
                )
        events.append(event("response.output_item.done", output_index=index, item=item))
        if reply.malformed_chunk:
            events.append("event: response.output_item.done\ndata: {this is not json\n\n")
    if not reply.no_finish:
        events.append(event("response.completed", response=openai_response(body, reply)))
    return events


def anthropic_message(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if reply.text:
        content.append({"type": "text", "text": reply.text})
    for i, (name, args) in enumerate(reply.tool_calls):
        content.append({"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args})
    return {
        "id": "msg_test",
        "type": "message",
        "role": "assistant",
        "model": body.get("model", "test"),
        "content": content,
        "stop_reason": "tool_use" if reply.tool_calls else "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens},
    }


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n"


def anthropic_events(body: dict[str, Any], reply: Reply) -> list[str]:
    message = {"id": "msg_test", "type": "message", "role": "assistant",
               "model": body.get("model", "test"), "content": [], "stop_reason": None,
               "stop_sequence": None,
               "usage": {"input_tokens": reply.input_tokens, "output_tokens": 1}}  # fmt: skip
    events = ["data: {broken\n\n" if reply.malformed_start
              else _event("message_start", {"message": message})]  # fmt: skip
    index = 0
    if reply.text:
        events.append(
            _event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
        )
        for piece in reply.text.split(" "):
            events.append(
                _event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": piece + " "}},
                )
            )
        events.append(_event("content_block_stop", {"index": 0}))
        index = 1
    if reply.malformed_chunk:
        events.append("event: content_block_delta\ndata: {broken\n\n")
    for i, (name, args) in enumerate(reply.tool_calls):
        block = {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": {}}
        events.append(_event("content_block_start", {"index": index + i, "content_block": block}))
        events.append(
            _event(
                "content_block_delta",
                {
                    "index": index + i,
                    "delta": {"type": "input_json_delta", "partial_json": json.dumps(args)},
                },
            )
        )
        events.append(_event("content_block_stop", {"index": index + i}))
    if not reply.no_finish:
        stop = "tool_use" if reply.tool_calls else "end_turn"
        delta = {"stop_reason": stop, "stop_sequence": None}
        usage = {"output_tokens": reply.output_tokens}
        events.append(_event("message_delta", {"delta": delta, "usage": usage}))
        events.append(_event("message_stop", {}))
    return events


def tool_then_answer(
    tool: str, arguments: dict[str, Any], answer: str
) -> Callable[[dict[str, Any]], Reply]:
    """A responder: call `tool` first, then answer once its result is in the conversation."""

    def respond(body: dict[str, Any]) -> Reply:
        last = (body.get("messages") or body.get("input") or [{}])[-1]
        content = last.get("content")
        is_result = (
            last.get("role") == "tool"
            or last.get("type") == "function_call_output"
            or (isinstance(content, list) and any(b.get("type") == "tool_result" for b in content))
        )
        return Reply(text=answer) if is_result else Reply(text=None, tool_calls=[(tool, arguments)])

    return respond


def main() -> None:  # pragma: no cover - used by benchmarks in another process
    """`python -m afctl.fake_llm [--port N] [--latency S]`: serve until killed; prints the URL."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--tool", default="lookup_order", help="'' to answer every request")
    parser.add_argument("--arguments", default='{"order_id": "123"}')
    parser.add_argument("--answer", default="Order 123 has shipped.")
    args = parser.parse_args()
    server = LLMServer(latency_s=args.latency)
    if args.port:
        server.httpd.server_close()
        server = LLMServer(latency_s=args.latency, port=args.port)
    if args.tool:
        server.responder = tool_then_answer(args.tool, json.loads(args.arguments), args.answer)
    else:
        server.default = Reply(text=args.answer)
    print(server.url, flush=True)
    server.httpd.serve_forever(poll_interval=0.05)


if __name__ == "__main__":  # pragma: no cover
    main()

"""HTTP tools against a loopback server: templates, encoding, secrets, extraction, limits."""

from __future__ import annotations

import json
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from afctl.context import Context
from afctl.testing import write_repo


class Api:
    """A small API: /orders/ID (JSON), /echo, /big, /fail, /hop/N (redirects), /text."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def handle_any(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                api.seen.append(
                    {"method": self.command, "path": self.path, "headers": dict(self.headers),
                     "body": body}
                )  # fmt: skip
                path = self.path.split("?")[0]
                if path.startswith("/orders/"):
                    order = path.split("/", 2)[2]
                    document = {"data": {"id": order, "status": "shipped", "items": [1, 2]}}
                    self.reply(200, json.dumps(document).encode())
                elif path == "/echo":
                    self.reply(200, json.dumps(api.seen[-1]).encode())
                elif path == "/big":
                    self.reply(200, b"x" * 5000, "text/plain")
                elif path == "/fail":
                    self.reply(503, b"down for maintenance", "text/plain")
                elif path == "/away":  # to another origin, given in ?to=
                    target = self.path.split("to=", 1)[1]
                    self.send_response(302)
                    self.send_header("location", target)
                    self.send_header("content-length", "0")
                    self.end_headers()
                elif path.startswith("/hop/"):
                    left = int(path.rsplit("/", 1)[1])
                    self.send_response(302)
                    self.send_header("location", f"/hop/{left - 1}" if left else "/text")
                    self.send_header("content-length", "0")
                    self.end_headers()
                else:
                    self.reply(200, b"plain words", "text/plain")

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def api() -> Iterator[Api]:
    server = Api()
    yield server
    server.httpd.shutdown()


def repo_with(tmp_path: Path, tool_spec: str, call: str) -> Path:
    return write_repo(
        tmp_path,
        {
            ".afctl/.gitignore": "*\n",
            "tool.yaml": "apiVersion: afctl/v1\nkind: Tool\nmetadata: {name: api}\nspec:\n"
            + textwrap.indent(textwrap.dedent(tool_spec).strip(), "  ")
            + "\n",
            "model.yaml": (
                "apiVersion: afctl/v1\nkind: Model\nmetadata: {name: script}\n"
                "spec:\n  provider: local\n  model: scripted\n  script:\n    rules:\n"
                f"      - turn: 1\n        tool_calls: [{{name: api, arguments: {call}}}]\n"
                "      - after_tool: api\n        reply: '{{ tool_result }}'\n"
            ),
            "agent.yaml": (
                "apiVersion: afctl/v1\nkind: Agent\nmetadata: {name: helper}\n"
                "spec: {model: script, instructions: Help., tools: [api]}\n"
            ),
        },
    )


def call(repo: Path) -> tuple[str, str]:
    """(status of the tool call, what the tool returned)."""
    result = Context(workspace=repo).run("agent/helper", "go", paths=[str(repo)])
    assert result.ok, result.error
    with Context(workspace=repo).prompt_log() as log:
        (event,) = [e for e in log.events(result.run_id) if e.type == "tool_call"]
    return event.status or "", event.payload["result"]


def test_get_with_url_template_extract_and_secret_header(tmp_path, api, monkeypatch):
    monkeypatch.setenv("SHOP_KEY", "shop-secret-key-0042")
    repo = repo_with(
        tmp_path,
        f"""
        type: http
        url: "{api.url}/orders/{{{{ args.order_id }}}}"
        headers: {{Authorization: "Bearer ${{env:SHOP_KEY}}"}}
        parameters: {{type: object, properties: {{order_id: {{type: string}}}}, required: [order_id]}}
        extract: /data/status
        """,
        "{order_id: A-17}",
    )
    assert call(repo) == ("ok", "shipped")
    (seen,) = api.seen
    assert seen["path"] == "/orders/A-17"
    assert seen["headers"]["Authorization"] == "Bearer shop-secret-key-0042"
    data = b"".join(p.read_bytes() for p in (repo / ".afctl").glob("logs.db*"))
    assert b"shop-secret-key-0042" not in data


def test_arguments_cannot_escape_the_url_path_or_host(tmp_path, api):
    repo = repo_with(
        tmp_path,
        f"""
        type: http
        url: "{api.url}/orders/{{{{ args.order_id }}}}"
        """,
        "{order_id: '../admin?x=1#@evil.example'}",
    )
    status, _ = call(repo)
    assert status == "ok"
    assert api.seen[0]["path"] == "/orders/..%2Fadmin%3Fx%3D1%23%40evil.example"


def test_post_json_body_and_query(tmp_path, api):
    repo = repo_with(
        tmp_path,
        f"""
        type: http
        method: POST
        url: "{api.url}/echo"
        query: {{source: "agent-{{{{ args.who }}}}"}}
        body: {{order: "{{{{ args.order }}}}", note: "from {{{{ args.who }}}}", tags: [a, b]}}
        extract: /body
        """,
        "{order: 17, who: bot}",
    )
    status, text = call(repo)
    assert status == "ok"
    assert json.loads(text) == {"order": 17, "note": "from bot", "tags": ["a", "b"]}
    assert api.seen[0]["path"] == "/echo?source=agent-bot"
    assert api.seen[0]["headers"]["content-type"] == "application/json"


@pytest.mark.parametrize(
    ("path", "extra", "status", "fragment"),
    [
        ("/fail", "", "error", "HTTP 503: down for maintenance"),
        ("/big", "max_response_bytes: 1000", "ok", "[truncated: the response is larger than 1000"),
        ("/hop/2", "", "ok", "plain words"),
        ("/hop/9", "max_redirects: 3", "error", "too many redirects"),
        ("/text", "extract: /x", "error", "extract needs a JSON response"),
        ("/orders/1", "extract: /data/missing", "error", "nothing at /data/missing"),
        ("/orders/1", "extract: /data/items/1", "ok", "2"),
    ],
)
def test_responses_and_their_limits(tmp_path, api, path, extra, status, fragment):
    repo = repo_with(tmp_path, f'type: http\nurl: "{api.url}{path}"\n{extra}', "{}")
    got_status, text = call(repo)
    assert got_status == status and fragment in text


def test_only_http_urls(tmp_path, api):
    repo = repo_with(
        tmp_path, 'type: http\nurl: "{{ args.where }}"', "{where: 'file:///etc/passwd'}"
    )
    status, text = call(repo)
    assert status == "error" and "only http and https" in text


def test_a_model_chosen_reference_is_sent_as_text_never_resolved(tmp_path, api, monkeypatch):
    """Issue 14 #4: only manifest-authored text expands ${env:...}."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-proj-" + "k" * 40)
    monkeypatch.setenv("SHOP_KEY", "shop-secret-key-0042")
    repo = repo_with(
        tmp_path,
        f"""
        type: http
        url: "{api.url}/echo?q={{{{ args.q }}}}"
        headers: {{X-Q: "{{{{ args.q }}}}", Authorization: "Bearer ${{env:SHOP_KEY}} {{{{ args.q }}}}"}}
        query: {{also: "{{{{ args.q }}}}"}}
        body: {{q: "{{{{ args.q }}}}", text: "q={{{{ args.q }}}}"}}
        method: POST
        """,
        "{q: '${env:OPENAI_API_KEY}'}",
    )
    status, _ = call(repo)
    assert status == "ok"
    (seen,) = api.seen
    assert seen["headers"]["X-Q"] == "${env:OPENAI_API_KEY}"
    assert seen["headers"]["Authorization"] == "Bearer shop-secret-key-0042 ${env:OPENAI_API_KEY}"
    assert "kkkk" not in json.dumps(seen)
    assert json.loads(seen["body"]) == {
        "q": "${env:OPENAI_API_KEY}",
        "text": "q=${env:OPENAI_API_KEY}",
    }


def test_the_urls_own_query_string_is_kept(tmp_path, api):
    """Issue 14 #15."""
    repo = repo_with(
        tmp_path,
        f'type: http\nurl: "{api.url}/echo?fixed=1&b=2"\nquery: {{q: "{{{{ args.q }}}}"}}',
        "{q: 'x y'}",
    )
    assert call(repo)[0] == "ok"
    assert api.seen[0]["path"] == "/echo?fixed=1&b=2&q=x+y"


@pytest.mark.parametrize(
    ("policy", "status", "reaches_other", "fragment"),
    [
        ("", "error", False, "redirected to another origin"),
        ("redirects: none", "ok", False, ""),
        ("redirects: any", "ok", True, "plain words"),
    ],
)
def test_credentials_never_cross_origins_on_a_redirect(
    tmp_path, api, monkeypatch, policy, status, reaches_other, fragment
):
    """Issue 14 #7: redirects stay in the origin by default; followed elsewhere (only when the
    tool says so) they carry none of the tool's headers."""
    monkeypatch.setenv("SHOP_KEY", "shop-secret-key-0042")
    other = Api()
    try:
        repo = repo_with(
            tmp_path,
            f"""
            type: http
            url: "{api.url}/away?to={other.url}/text"
            headers: {{X-Api-Key: "${{env:SHOP_KEY}}", Authorization: "Bearer ${{env:SHOP_KEY}}"}}
            {policy}
            """,
            "{}",
        )
        got, text = call(repo)
        assert got == status and fragment in text
        assert bool(other.seen) == reaches_other
        for request in other.seen:
            assert "shop-secret-key-0042" not in json.dumps(request["headers"])
    finally:
        other.httpd.shutdown()


def test_same_origin_redirects_keep_the_headers(tmp_path, api, monkeypatch):
    monkeypatch.setenv("SHOP_KEY", "shop-secret-key-0042")
    repo = repo_with(
        tmp_path,
        f'type: http\nurl: "{api.url}/hop/1"\nheaders: {{X-Api-Key: "${{env:SHOP_KEY}}"}}',
        "{}",
    )
    assert call(repo) == ("ok", "plain words")
    assert [r["headers"].get("X-Api-Key") for r in api.seen] == ["shop-secret-key-0042"] * 3

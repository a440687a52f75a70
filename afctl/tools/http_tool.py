"""HTTP tools (`type: http`): one request per call, built from templates over the arguments.

The URL, query values, headers and body are jinja2 templates (sandboxed, StrictUndefined) over
`args`. In the URL every argument is percent-encoded, so an argument cannot change the host or
climb the path (`../`); query values are encoded by the client. Header values may use
`${env:NAME}` secrets, resolved at call time and redacted from the log. Only http and https;
redirects are bounded; responses larger than `max_response_bytes` are cut off and flagged. An
HTTP error status is a tool error the model reads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from afctl.errors import RunError
from afctl.providers.types import ToolSpec
from afctl.tools.base import ToolFailed

if TYPE_CHECKING:
    from afctl.runtime.environment import RunEnvironment

DEFAULT_MAX_RESPONSE_BYTES = 1_048_576
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_TIMEOUT_S = 30.0
_ANY_ARGUMENTS = {"type": "object", "properties": {}}


def _render(template: str, arguments: dict[str, Any], what: str) -> str:
    from jinja2 import TemplateError

    from afctl.safety.templates import TemplateFailure, render

    try:
        return render(template, {"args": arguments})
    except (TemplateError, TemplateFailure) as exc:
        raise ToolFailed(f"cannot build the request {what}: {exc}") from None


def _url_safe(value: Any) -> Any:
    """An argument as it may appear inside a URL: every reserved character encoded."""
    if isinstance(value, dict):
        return {k: _url_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_url_safe(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(str(value), safe="")


def pointer(document: Any, path: str) -> Any:
    """The value at a JSON pointer (`/data/0/status`).

    Raises:
        ToolFailed: nothing is there.
    """
    if path in ("", "/"):
        return document
    value = document
    for raw in path.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            raise ToolFailed(f"the response has nothing at {path}")
    return value


class HttpTool:
    def __init__(self, name: str, spec: dict[str, Any], environment: RunEnvironment) -> None:
        self.name = name
        self.config = spec
        self.environment = environment
        self.spec = ToolSpec(
            name,
            str(spec.get("description") or f"{spec.get('method', 'GET')} {spec['url']}"),
            spec.get("parameters") or _ANY_ARGUMENTS,
        )
        self.timeout_s = spec.get("timeout_s")

    def request(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Method, URL, query, headers and body for one call."""
        resolve = self.environment.secrets.resolve
        url = resolve(_render(str(self.config["url"]), _url_safe(arguments), "URL"))
        if urlsplit(url).scheme not in ("http", "https"):
            raise ToolFailed(f"only http and https URLs can be called, not {url!r}")
        query = {
            key: _render(str(value), arguments, f"query {key}")
            for key, value in (self.config.get("query") or {}).items()
        }
        headers = {
            key: resolve(_render(str(value), arguments, f"header {key}"))
            for key, value in (self.config.get("headers") or {}).items()
        }
        body = self.config.get("body")
        content: str | None = None
        if isinstance(body, dict):
            content = json.dumps(_render_tree(body, arguments))
            headers.setdefault("content-type", "application/json")
        elif body is not None:
            content = _render(str(body), arguments, "body")
        return {
            "method": str(self.config.get("method", "GET")),
            "url": url,
            "params": query,
            "headers": headers,
            "content": content,
        }

    async def call(self, arguments: dict[str, Any]) -> Any:
        import httpx2

        request = self.request(arguments)
        limit = int(self.config.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES))
        timeout = float(self.timeout_s or DEFAULT_TIMEOUT_S)
        try:
            async with (
                httpx2.AsyncClient(
                    follow_redirects=True,
                    max_redirects=int(self.config.get("max_redirects", DEFAULT_MAX_REDIRECTS)),
                    timeout=timeout,
                    trust_env=False,
                ) as client,
                client.stream(**request) as response,
            ):
                data = bytearray()
                truncated = False
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > limit:
                        del data[limit:]
                        truncated = True
                        break
                status = response.status_code
                kind = response.headers.get("content-type", "")
        except httpx2.TooManyRedirects:
            raise ToolFailed("too many redirects") from None
        except httpx2.HTTPError as exc:
            raise ToolFailed(f"{request['method']} {request['url']} failed: {exc}") from None
        text = data.decode("utf-8", errors="replace")
        if status >= 400:
            raise ToolFailed(f"HTTP {status}: {text[:500]}")
        extract = self.config.get("extract")
        if truncated:
            if extract is not None:
                raise ToolFailed(f"the response is larger than {limit} bytes")
            return text + f"\n[truncated: the response is larger than {limit} bytes]"
        if extract is None:
            return text
        try:
            document = json.loads(text)
        except ValueError:
            raise ToolFailed(f"extract needs a JSON response, not {kind or 'this'}") from None
        return pointer(document, str(extract))


def _render_tree(value: Any, arguments: dict[str, Any]) -> Any:
    """A JSON body whose string values are templates: a value that is only `{{ args.x }}`
    keeps x's type (a number stays a number)."""
    if isinstance(value, dict):
        return {k: _render_tree(v, arguments) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_tree(v, arguments) for v in value]
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
            name = stripped[2:-2].strip()
            if name.startswith("args.") and name[5:].isidentifier():
                if name[5:] not in arguments:
                    raise ToolFailed(f"cannot build the request body: no argument {name[5:]}")
                return arguments[name[5:]]
        return _render(value, arguments, "body")
    return value


def build(name: str, spec: dict[str, Any], environment: RunEnvironment) -> HttpTool:
    if "url" not in spec:
        raise RunError(f"tool {name}: an http tool needs a url")
    return HttpTool(name, spec, environment)

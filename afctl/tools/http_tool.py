"""HTTP tools (`type: http`): one request per call, built from templates over the arguments.

The URL, query values, headers and body are jinja2 templates (sandboxed, StrictUndefined) over
`args`. In the URL every argument is percent-encoded, so an argument cannot change the host or
climb the path (`../`); query values are encoded and added to the URL's own query. `${env:NAME}`
secrets are resolved only where the manifest writes them, at call time, and redacted from the
log: a model that passes `${env:...}` as an argument sends that text, never a secret. Only http
and https; redirects are followed within the same origin by default (`redirects: any` follows
them elsewhere, without the manifest's headers, so credentials never cross origins; `none`
follows none), at most `max_redirects`. A tool installed from a blueprint reaches only the
hosts it declares. Responses larger than `max_response_bytes` are cut off and flagged. An HTTP
error status is a tool error the model reads.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urljoin, urlsplit, urlunsplit

from afctl.errors import RunError
from afctl.providers.types import ToolSpec
from afctl.tools.base import ToolFailed

if TYPE_CHECKING:
    from afctl.safety.secrets import Secrets
    from afctl.tool_context import ToolContext

DEFAULT_MAX_RESPONSE_BYTES = 1_048_576
DEFAULT_MAX_REDIRECTS = 5
DEFAULT_TIMEOUT_S = 30.0
_ANY_ARGUMENTS = {"type": "object", "properties": {}}


def _render(template: str, arguments: dict[str, Any], what: str, secrets: Secrets) -> str:
    from jinja2 import TemplateError

    from afctl.safety.templates import TemplateFailure

    try:
        return secrets.render(template, {"args": arguments})
    except (TemplateError, TemplateFailure) as exc:
        raise ToolFailed(f"cannot build the request {what}: {exc}") from None


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def with_query(url: str, query: dict[str, str]) -> str:
    """`url` with `query` added to the query string it already has."""
    if not query:
        return url
    parts = urlsplit(url)
    extra = urlencode(list(query.items()))
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


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
    def __init__(self, name: str, spec: dict[str, Any], environment: ToolContext) -> None:
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
        """Method, URL (with the query), headers and body for one call.

        Raises:
            ToolFailed: a template fails, or the URL is not http(s).
            CapabilityDenied: the tool may not reach the URL's host.
        """
        secrets = self.environment.secrets
        url = _render(str(self.config["url"]), _url_safe(arguments), "URL", secrets)
        if urlsplit(url).scheme not in ("http", "https"):
            raise ToolFailed(f"only http and https URLs can be called, not {url!r}")
        self.environment.allowed.url(url)
        query = {
            key: _render(str(value), arguments, f"query {key}", secrets)
            for key, value in (self.config.get("query") or {}).items()
        }
        headers = {
            key: _render(str(value), arguments, f"header {key}", secrets)
            for key, value in (self.config.get("headers") or {}).items()
        }
        body = self.config.get("body")
        content: str | None = None
        if isinstance(body, dict):
            content = json.dumps(_render_tree(body, arguments, secrets))
            headers.setdefault("content-type", "application/json")
        elif body is not None:
            content = _render(str(body), arguments, "body", secrets)
        return {
            "method": str(self.config.get("method", "GET")),
            "url": with_query(url, query),
            "headers": headers,
            "content": content,
        }

    async def call(self, arguments: dict[str, Any]) -> Any:
        import httpx2

        request = self.request(arguments)
        limit = int(self.config.get("max_response_bytes", DEFAULT_MAX_RESPONSE_BYTES))
        timeout = float(self.timeout_s or DEFAULT_TIMEOUT_S)
        policy = str(self.config.get("redirects", "same_origin"))
        hops = int(self.config.get("max_redirects", DEFAULT_MAX_REDIRECTS))
        origin = _origin(request["url"])
        try:
            async with httpx2.AsyncClient(
                follow_redirects=False, timeout=timeout, trust_env=False
            ) as client:
                for _ in range(hops + 1):
                    async with client.stream(**request) as response:
                        location = response.headers.get("location")
                        if response.is_redirect and location and policy != "none":
                            request = self._redirected(
                                request, str(response.url), location, response.status_code,
                                origin, policy,
                            )  # fmt: skip
                            origin = _origin(request["url"])
                            continue
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
                        break
                else:
                    raise ToolFailed("too many redirects")
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

    def _redirected(
        self,
        request: dict[str, Any],
        current: str,
        location: str,
        status: int,
        origin: tuple[str, str, int | None],
        policy: str,
    ) -> dict[str, Any]:
        """The request a redirect leads to.

        Raises:
            ToolFailed: it leaves the origin (and `redirects` is not `any`), or http(s).
            CapabilityDenied: the tool may not reach the host it leads to.
        """
        target = urljoin(current, location)
        if urlsplit(target).scheme not in ("http", "https"):
            raise ToolFailed(f"redirected to {target!r}, which is not http or https")
        headers = dict(request["headers"])
        if _origin(target) != origin:
            if policy != "any":
                raise ToolFailed(
                    f"redirected to another origin ({urlsplit(target).netloc}); not followed "
                    "(the tool's redirects: any would follow it, without its headers)"
                )
            headers = {}  # the manifest's headers may hold credentials: they stay home
        self.environment.allowed.url(target)
        method, content = request["method"], request["content"]
        if status == 303 or (status in (301, 302) and method == "POST"):
            method, content = "GET", None
            headers.pop("content-type", None)
        return {"method": method, "url": target, "headers": headers, "content": content}


def _render_tree(value: Any, arguments: dict[str, Any], secrets: Secrets) -> Any:
    """A JSON body whose string values are templates: a value that is only `{{ args.x }}`
    keeps x's type (a number stays a number)."""
    if isinstance(value, dict):
        return {k: _render_tree(v, arguments, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_tree(v, arguments, secrets) for v in value]
    if isinstance(value, str):
        stripped = value.strip()
        if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
            name = stripped[2:-2].strip()
            if name.startswith("args.") and name[5:].isidentifier():
                if name[5:] not in arguments:
                    raise ToolFailed(f"cannot build the request body: no argument {name[5:]}")
                return arguments[name[5:]]
        return _render(value, arguments, "body", secrets)
    return value


def build(name: str, spec: dict[str, Any], environment: ToolContext) -> HttpTool:
    if "url" not in spec:
        raise RunError(f"tool {name}: an http tool needs a url")
    return HttpTool(name, spec, environment)

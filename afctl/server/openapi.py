"""The OpenAPI 3.1 document of the API, made from the route declarations (so a route cannot
be missing from it, nor a documented one absent)."""

from __future__ import annotations

import re
from typing import Any

from afctl._version import __version__
from afctl.server.api import Api, Endpoint
from afctl.server.problems import MEDIA_TYPE

PROBLEM = {
    "type": "object",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "exit_code": {"type": "integer"},
        "hint": {"type": "string"},
        "request_id": {"type": "string"},
    },
    "required": ["type", "title", "status", "detail"],
}
ERRORS = {
    "400": "Bad request: the body is not JSON, or the request is wrong",
    "401": "No credential, or one that is not accepted",
    "403": "The caller's role does not allow this in this environment",
    "404": "Not found",
    "405": "The method is not allowed here",
    "409": "Conflict with the state (locked, stale, not in the right status)",
    "413": "The body is too large",
    "422": "The body or a parameter does not match the schema",
    "429": "Too many requests (Retry-After says when to retry)",
    "500": "Internal error",
    "502": "A model provider or tool failed",
    "503": "Not ready, or shutting down",
    "504": "The run is still going when the request timed out",
}


def document(api: Api) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in api.endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "afctl",
            "version": __version__,
            "description": "Run, follow and manage the agents and workflows applied to an afctl "
            "workspace. Authenticate with `Authorization: Bearer <API key or JWT>`; each route "
            "needs a role (x-afctl-role) in the server's environment.",
        },
        "paths": paths,
        "components": {
            "schemas": {"Problem": PROBLEM},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An afctl API key (afk_...) or a JWT",
                }
            },
        },
    }


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "responses": _responses(endpoint),
    }
    if endpoint.role is not None:
        operation["security"] = [{"bearer": []}]
        operation["x-afctl-role"] = endpoint.role
    else:
        operation["security"] = []
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)(?::\w+)?}", endpoint.path)
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in endpoint.query.items()
    ]
    if endpoint.path == "/v1/runs" and endpoint.method == "POST":
        parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                           "schema": {"type": "string", "maxLength": 200}})  # fmt: skip
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": endpoint.body}},
        }
    return operation


def _responses(endpoint: Endpoint) -> dict[str, Any]:
    schema = endpoint.response or {}
    content: dict[str, Any] = {
        media: {"schema": schema if media == "application/json" else {"type": "string"}}
        for media in endpoint.media.split(", ")
    }
    responses: dict[str, Any] = {str(endpoint.status): {"description": "Done",
                                                        "content": content}}  # fmt: skip
    for status in endpoint.statuses:
        responses.setdefault(str(status), {"description": "See the summary", "content": {
            "application/json": {"schema": {"type": "object"}}}})  # fmt: skip
    problem = {MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for code, text in ERRORS.items():
        responses.setdefault(code, {"description": text, "content": problem})
    return responses

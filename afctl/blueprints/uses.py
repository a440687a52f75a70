"""What a blueprint's rendered manifests (and eval suites) use beyond talking to models, checked
against the capabilities its blueprint.yaml declares: `lint` and `install` refuse a blueprint
that uses what it does not declare, so what install shows is what it can do. (At run time,
`afctl.safety.capabilities` enforces the same, whatever the manifests say.)"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from afctl.diagnostics import Diagnostic, error
from afctl.safety.capabilities import (
    Capabilities,
    env_references,
    host_allowed,
    module_file,
)
from afctl.safety.templates import is_template

BUILTIN_TOOL_TYPES = frozenset({"python", "http", "mcp", "builtin", "agent"})
BUILTIN_PROVIDERS = frozenset(
    {"openai", "anthropic", "openai-compatible", "ollama", "vllm", "lmstudio", "local"}
)


@dataclass(frozen=True)
class Use:
    """One thing a manifest makes afctl do: (capability kind, value), and where."""

    kind: str
    value: str
    pointer: str
    local_only: bool = False
    """Not a capability: something a blueprint may never do (`write`, `outside`, `foreign`)."""


def _literal_host(url: object) -> str | None:
    """The host of a URL whose scheme and host are written out (not templated)."""
    if not isinstance(url, str) or "${" in url:
        return None
    head = url.split("/", 3)
    if len(head) < 3 or is_template("/".join(head[:3])):
        return None
    return urlsplit(url).hostname


def _python_uses(entrypoint: object, pointer: str) -> Iterator[Use]:
    module = str(entrypoint).partition(":")[0]
    yield Use("python", module, pointer)


def uses_of(kind: str, data: dict[str, Any]) -> Iterator[Use]:
    """Everything a document needs a capability for."""
    spec = data.get("spec") or {}
    for name in sorted(set(env_references(data))):
        yield Use("env", name, "")
    if kind == "Tool":
        tool_type = str(spec.get("type"))
        if tool_type not in BUILTIN_TOOL_TYPES:
            yield Use("plugins", tool_type, "/spec/type")
        if tool_type == "python":
            yield from _python_uses(spec.get("entrypoint"), "/spec/entrypoint")
        elif tool_type == "mcp" and spec.get("command"):
            yield Use("commands", Path(str(spec["command"])).name, "/spec/command")
            if spec.get("cwd") not in (None, "", "."):
                yield Use("outside", str(spec["cwd"]), "/spec/cwd", local_only=True)
        elif tool_type == "builtin" and spec.get("builtin") == "write_file":
            yield Use("write", "write_file", "/spec/builtin", local_only=True)
        if tool_type in ("http", "mcp") and spec.get("url"):
            host = _literal_host(spec["url"])
            if host:
                yield Use("hosts", host, "/spec/url")
    elif kind == "Agent":
        for index, tool in enumerate(spec.get("tools") or []):
            if tool == "builtin/write_file":
                yield Use("write", "write_file", f"/spec/tools/{index}", local_only=True)
        for stage in ("input", "output"):
            for index, rail in enumerate((spec.get("guardrails") or {}).get(stage) or []):
                if isinstance(rail, dict) and rail.get("type") == "python":
                    yield from _python_uses(
                        rail.get("entrypoint"), f"/spec/guardrails/{stage}/{index}/entrypoint"
                    )
    elif kind == "Model":
        provider = str(spec.get("provider"))
        if provider not in BUILTIN_PROVIDERS:
            yield Use("plugins", provider, "/spec/provider")
        host = _literal_host(spec.get("base_url"))
        if host:
            yield Use("hosts", host, "/spec/base_url")
        if spec.get("api_key_env"):
            yield Use("env", str(spec["api_key_env"]), "/spec/api_key_env")
    elif kind == "EvalSuite":
        from afctl.manifests.checks import BUILTIN_ASSERTIONS

        cases = [spec.get("defaults") or {}, *(spec.get("cases") or [])]
        for index, case in enumerate(cases):
            for number, check in enumerate(
                case.get("assert") or [] if isinstance(case, dict) else []
            ):
                base = str(check.get("type", "")).removeprefix("not_")
                where = f"/spec/cases/{index - 1}/assert/{number}" if index else (
                    f"/spec/defaults/assert/{number}")  # fmt: skip
                if base == "python":
                    yield from _python_uses(check.get("entrypoint"), where + "/entrypoint")
                elif base not in BUILTIN_ASSERTIONS:
                    yield Use("plugins", base, where + "/type")


_NEVER = {
    "write": "a blueprint's file tools only read (write_file is refused)",
    "outside": "a blueprint's MCP servers run in its own folder (cwd is refused)",
}


def undeclared(
    documents: list[tuple[str, dict[str, Any], str, int]], declared: Capabilities, folder: Path
) -> list[Diagnostic]:
    """Problems with what the documents (kind, data, file, line) use: anything not declared,
    anything a blueprint may never do, and python entrypoints that are not its own modules."""
    problems = []
    for kind, data, file, line in documents:
        for use in uses_of(kind, data):
            message = None
            if use.local_only:
                message = _NEVER[use.kind]
            elif use.kind == "python":
                top = use.value.split(".")[0]
                if module_file(folder, use.value) is None:
                    message = f"python module {use.value} is not a module of the blueprint"
                elif top not in declared.python:
                    message = (
                        f"it runs python module {use.value}, but capabilities.python does "
                        f"not list {top}"
                    )
            elif use.kind == "hosts":
                if not host_allowed(use.value, declared.hosts):
                    message = f"it reaches {use.value}, but capabilities.hosts does not list it"
            elif use.value not in getattr(declared, use.kind):
                message = f"it uses {use.value}, but capabilities.{use.kind} does not list it"
            if message:
                problems.append(
                    error(
                        "blueprint.capability",
                        message,
                        file=file,
                        line=line,
                        pointer=use.pointer or None,
                        hint="declare it under spec.capabilities in blueprint.yaml (the "
                        "installer sees and accepts it), or remove the use",
                    )
                )
    return problems

"""Capabilities: what a resource may make afctl do beyond talking to its model, checked at one
boundary that every execution channel passes through.

Your own manifests may do anything they say (you wrote and reviewed them). A blueprint's
resources run under the capabilities its `blueprint.yaml` declares, shown at install like an
app's permissions (or Deno's `--allow-*` flags):

    capabilities:
      python: [tools]            # its own modules its python tools, guardrails, assertions call
      commands: [npx]            # programs its MCP stdio tools start
      env: [ORDERS_API_KEY]      # environment variables its manifests read as ${env:NAME}
      plugins: [shell]           # tool, assertion or provider types from installed plugins
      hosts: [api.example.com]   # hosts its http tools, MCP servers and Models reach

`python`, `commands`, `env` and `plugins` act on this machine (local): a blueprint gets them
only once it is trusted, and trust is bound to its content digest. `hosts` are granted as
declared. A blueprint's file tools only read, and only inside its own folder.

Every channel asks its `Grant`: python entrypoints of any kind, MCP commands, plugin types,
builtin file roots, hosts (http tools, MCP over HTTP, Models' base URLs) and `${env:...}`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from afctl.errors import RunError

KINDS = ("python", "commands", "env", "plugins", "hosts")
LOCAL = frozenset({"python", "commands", "env", "plugins"})
"""Capabilities that act on this machine: only a trusted blueprint gets them."""
DESCRIBED = {
    "python": "run its own python code (modules {})",
    "commands": "start programs: {}",
    "env": "read environment variables: {}",
    "plugins": "use plugin types: {}",
    "hosts": "reach hosts: {}",
}
CONTROL_FOLDERS = frozenset({".afctl", ".git"})
"""Folders no file tool ever reads or writes: afctl's workspace (state, trust) and git's."""

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*")


class CapabilityDenied(RunError):
    """A resource asked for something its capabilities do not allow."""


@dataclass(frozen=True)
class Capabilities:
    python: frozenset[str] = frozenset()
    commands: frozenset[str] = frozenset()
    env: frozenset[str] = frozenset()
    plugins: frozenset[str] = frozenset()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, data: object) -> Capabilities:
        """From `spec.capabilities` as written (the schema has checked its shape)."""
        if not isinstance(data, Mapping):
            return cls()
        return cls(**{k: frozenset(str(v) for v in data.get(k) or ()) for k in KINDS})

    def to_dict(self) -> dict[str, list[str]]:
        return {k: sorted(getattr(self, k)) for k in KINDS if getattr(self, k)}

    def without_local(self) -> Capabilities:
        return Capabilities(hosts=self.hosts)

    def describe(self) -> list[tuple[str, str, bool]]:
        """(kind, what it allows, whether it is local) of each declared capability."""
        return [
            (k, DESCRIBED[k].format(", ".join(sorted(getattr(self, k)))), k in LOCAL)
            for k in KINDS
            if getattr(self, k)
        ]

    def changes(self, before: Capabilities) -> list[str]:
        """What differs from `before`, as `+ commands npx` / `- hosts a.example`."""
        lines = []
        for kind in KINDS:
            old, new = getattr(before, kind), getattr(self, kind)
            lines += [f"+ {kind} {v}" for v in sorted(new - old)]
            lines += [f"- {kind} {v}" for v in sorted(old - new)]
        return lines


def host_allowed(host: str, patterns: frozenset[str]) -> bool:
    """Whether `host` is one of `patterns` (`api.example.com`, or `*.example.com` for any
    subdomain)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        pattern = pattern.lower().rstrip(".")
        if host == pattern or (pattern.startswith("*.") and host.endswith(pattern[1:])):
            return True
    return False


def env_references(value: Any) -> Iterator[str]:
    """The names of every `${env:NAME}` in a document's strings."""
    from afctl.safety import interpolation

    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "${" in item:
                for found in interpolation.scan(item):
                    if isinstance(found, interpolation.Reference) and found.source == "env":
                        yield found.name
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def module_file(root: Path, module: str) -> Path | None:
    """Where `package.module` would be imported from under `root`, found without importing
    (so without running) anything; None when it is not there."""
    parts = module.split(".")
    base = root.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


@dataclass(frozen=True)
class Grant:
    """What one resource may do. `origin` None: your own manifests, which may do anything."""

    folder: Path
    """Where its own files are: the repository root, or the blueprint's folder in the store."""
    origin: str | None = None
    """The blueprint it came from (`support-desk 1.0.0`)."""
    allowed: Capabilities = field(default_factory=Capabilities)
    """What it may do (for a blueprint: what it declared, less the local ones if untrusted)."""
    declared: Capabilities = field(default_factory=Capabilities)
    withheld: str = ""
    """Why declared local capabilities are not allowed (not trusted, changed since)."""
    hint: str | None = None

    @property
    def confined(self) -> bool:
        return self.origin is not None

    def _deny(self, kind: str, what: str) -> CapabilityDenied:
        if what in getattr(self.declared, kind) and self.withheld:
            return CapabilityDenied(
                f"blueprint {self.origin}: {self.withheld}, so it may not {what_of(kind, what)}",
                hint=self.hint,
            )
        return CapabilityDenied(
            f"blueprint {self.origin} may not {what_of(kind, what)}: its blueprint.yaml does not "
            f"declare it (capabilities.{kind})",
            hint="a blueprint can only do what it declares and you accept at install",
        )

    def _require(self, kind: str, value: str, allowed: bool) -> None:
        if self.confined and not allowed:
            raise self._deny(kind, value)

    def python(self, entrypoint: str, root: str | None = None) -> Path:
        """The folder to import `entrypoint` (`pkg.mod:fn`) from, once it may run: for a
        blueprint, a module of its own (found without importing it) in a package it declared.

        Raises:
            CapabilityDenied: it may not.
        """
        from afctl.safety.paths import inside

        module = entrypoint.partition(":")[0]
        if not self.confined:
            return inside(self.folder, root) if root else self.folder
        top = module.split(".")[0]
        self._require("python", top, top in self.allowed.python)
        located = module_file(self.folder, module) if _MODULE.fullmatch(module) else None
        if located is None or not located.resolve().is_relative_to(self.folder.resolve()):
            raise CapabilityDenied(
                f"blueprint {self.origin}: python entrypoint {entrypoint!r} is not a module of "
                "its own",
                hint="a blueprint's python tools, guardrails and assertions call only its own code",
            )
        return self.folder

    def command(self, command: str) -> None:
        """Raises CapabilityDenied unless the resource may start `command`."""
        name = PurePosixPath(command).name if "/" not in command else command
        self._require("commands", name, name in self.allowed.commands)

    def env(self, name: str) -> None:
        self._require("env", name, name in self.allowed.env)

    def plugin(self, kind: str) -> None:
        self._require("plugins", kind, kind in self.allowed.plugins)

    def url(self, url: str) -> None:
        """Raises CapabilityDenied unless the resource may reach the host of `url`."""
        if not self.confined:
            return
        host = urlsplit(url).hostname or ""
        self._require("hosts", host or url, bool(host) and host_allowed(host, self.allowed.hosts))

    def references(self, document: Any) -> None:
        """Raises CapabilityDenied unless every `${env:...}` in the document may be read."""
        if self.confined:
            for name in env_references(document):
                self.env(name)

    def file_root(self, root: str | None, *, reading: bool = True) -> Path:
        """The folder a file tool (or an import) of this resource works in.

        Raises:
            CapabilityDenied: a blueprint's root leaves its folder, or it wants to write.
        """
        from afctl.safety.paths import PathRefused, inside

        if not self.confined:
            if CONTROL_FOLDERS & set(Path(root or ".").parts):
                raise CapabilityDenied(f"root {root!r}: file tools never work in .afctl or .git")
            return self.folder / (root or ".")
        if not reading:
            raise CapabilityDenied(
                f"blueprint {self.origin}: its file tools only read (write_file is refused)",
                hint="a blueprint keeps no files of its own; give it a tool of yours instead",
            )
        try:
            return inside(self.folder, str(root or "."))
        except PathRefused as exc:
            raise CapabilityDenied(
                f"blueprint {self.origin}: root {root!r} leaves its own folder ({exc.message})"
            ) from None


def what_of(kind: str, value: str) -> str:
    return {
        "python": f"run python code (module {value})",
        "commands": f"start the program {value}",
        "env": f"read the environment variable {value}",
        "plugins": f"use the plugin type {value}",
        "hosts": f"reach {value}",
    }[kind]


LABEL = "afctl/blueprint"
VERSION_LABEL = "afctl/blueprint-version"


def origin_of(document: Mapping[str, Any]) -> tuple[str, str] | None:
    """(blueprint, version) a resource was installed from, by its labels; None: your own."""
    labels = (document.get("metadata") or {}).get("labels") or {}
    name = labels.get(LABEL) if isinstance(labels, Mapping) else None
    if name is None:
        return None
    return str(name), str(labels.get(VERSION_LABEL) or "")


class Grants:
    """Hands out grants. This one knows no blueprint's trust: a resource installed from a
    blueprint gets nothing local. The workspace's (`afctl.blueprints.trust.BlueprintGrants`)
    reads what is installed and trusted."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def for_document(self, document: Mapping[str, Any]) -> Grant:
        origin = origin_of(document)
        if origin is None:
            return Grant(self.root)
        return self.of_blueprint(*origin)

    def for_path(self, path: Path) -> Grant:
        """The grant of a file read from disk (an eval suite): your own, unless it lies in a
        blueprint's folder."""
        return Grant(self.root)

    def of_blueprint(self, name: str, version: str) -> Grant:
        return Grant(
            self.root / ".afctl" / "blueprints" / name / version,
            f"{name} {version}",
            withheld="its trust cannot be checked here",
        )

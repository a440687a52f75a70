"""`ToolContext`: what building a tool or a provider may see of the run around it.

The narrow context providers, tools, knowledge and plugins receive: the repository root, the
run's secrets (read through it, so they are redacted), the resources the run can see, and the
grant of the resource being built. The runtime's `RunEnvironment` extends it with what only
the runtime needs (shared provider clients and MCP connections, model resolution).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Self

from afctl.manifests.catalog import Catalog
from afctl.safety.capabilities import Grant, Grants
from afctl.safety.secrets import Secrets


@dataclass
class ToolContext:
    root: Path
    """The repository root: python tools import from here, builtin tools are confined to it."""
    secrets: Secrets = field(default_factory=Secrets)
    catalog: Catalog = field(default_factory=lambda: Catalog({}))
    workspace: Path | None = None
    """Where the workspace's files live (the knowledge index); `root/.afctl` by default."""
    grants: Grants | None = None
    """What each resource may do (`afctl.safety.capabilities`); without one, a resource
    installed from a blueprint gets nothing local."""
    scope: Grant | None = None
    """The grant of the resource being built or run with this context (see `scoped`)."""

    def grant(self, document: Mapping[str, Any]) -> Grant:
        """The capabilities of the resource `document` (every execution channel asks)."""
        if self.grants is None:
            self.grants = Grants(self.root)
        return self.grants.for_document(document)

    def scoped(self, document: Mapping[str, Any]) -> Self:
        """This context for building the resource `document`: its `allowed` is that
        resource's grant (secrets, catalog and clients are shared)."""
        return replace(self, scope=self.grant(document))

    @property
    def allowed(self) -> Grant:
        """What the resource this context was scoped to may do (your own: anything)."""
        return self.scope if self.scope is not None else Grant(self.root)

    @property
    def workspace_dir(self) -> Path:
        return self.workspace if self.workspace is not None else self.root / ".afctl"

    def env(self, name: str) -> str | None:
        """An environment variable, remembered as a secret (so it is redacted everywhere)."""
        return self.secrets.env(name)

"""What a run needs from around it: the repository root, its secrets, and the resources it can
see (from the applied state, or from manifest files)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.manifests.catalog import Catalog as Catalog
from afctl.providers.models import ModelConfig
from afctl.providers.pool import ProviderPool
from afctl.safety.capabilities import Grant, Grants

if TYPE_CHECKING:
    from afctl.tools.mcp_tool import McpPool
from afctl.safety.secrets import Secrets


@dataclass
class RunEnvironment:
    root: Path
    """The repository root: python tools import from here, builtin tools are confined to it."""
    secrets: Secrets = field(default_factory=Secrets)
    catalog: Catalog = field(default_factory=lambda: Catalog({}))
    providers: ProviderPool | None = None
    """Shared SDK clients; without one, a run creates and closes its own."""
    workspace: Path | None = None
    """Where the workspace's files live (the knowledge index); `root/.afctl` by default."""
    grants: Grants | None = None
    """What each resource may do (`afctl.safety.capabilities`); without one, a resource
    installed from a blueprint gets nothing local."""

    scope: Grant | None = None
    """The grant of the resource being built or run with this environment (see `scoped`)."""
    mcp: McpPool | None = None
    """MCP servers shared by the runs of an event loop; without one, a run starts (on first
    use) and stops its own."""

    def grant(self, document: Mapping[str, Any]) -> Grant:
        """The capabilities of the resource `document` (every execution channel asks)."""
        if self.grants is None:
            self.grants = Grants(self.root)
        return self.grants.for_document(document)

    def scoped(self, document: Mapping[str, Any]) -> RunEnvironment:
        """This environment for building the resource `document`: its `allowed` is that
        resource's grant (secrets, catalog and clients are shared)."""
        from dataclasses import replace

        return replace(self, scope=self.grant(document))

    def model(self, ref: str) -> ModelConfig:
        """The configuration of model `ref` (resolved once per catalog), once the grant of its
        Model resource allows what it reaches: a Model installed from a blueprint may send a
        key only to a host and from a variable the blueprint declares.

        Raises:
            UsageError: no such model.
            CapabilityDenied: its grant does not allow it.
        """
        from afctl.providers.models import DEFAULT_KEY_ENV, PRESETS, resolve_model

        catalog = self.catalog
        config = catalog.derived(
            ("model", ref), lambda: resolve_model(ref, catalog.of_kind("Model"))
        )
        document = catalog.find("Model", ref) if "/" not in ref else None
        if document is None:
            return config  # provider/model: the provider's own host and key
        grant = self.grant(document)
        if grant.confined:
            from afctl.providers.builtin import register_providers

            grant.references(document)
            if config.provider not in register_providers():
                grant.plugin(config.provider)
            preset = PRESETS.get(config.provider)
            if config.base_url is not None:
                grant.url(config.base_url)
                key = config.api_key_env or DEFAULT_KEY_ENV.get(config.provider) or (
                    preset.api_key_env if preset else None)  # fmt: skip
                if key:
                    grant.env(key)
            elif config.api_key_env:
                grant.env(config.api_key_env)
            script_file = (config.script or {}).get("file")
            if script_file:  # read from the blueprint's own folder, and only from there
                from dataclasses import replace

                checked = grant.file_root(str(script_file))
                config = replace(config, script={**(config.script or {}), "file": str(checked)})
        return config

    @property
    def allowed(self) -> Grant:
        """What the resource this environment was scoped to may do (your own: anything)."""
        return self.scope if self.scope is not None else Grant(self.root)

    @property
    def workspace_dir(self) -> Path:
        return self.workspace if self.workspace is not None else self.root / ".afctl"

    def env(self, name: str) -> str | None:
        """An environment variable, remembered as a secret (so it is redacted everywhere)."""
        return self.secrets.env(name)

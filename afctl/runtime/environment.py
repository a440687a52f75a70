"""What a run needs from around it: the repository root, its secrets, the resources it can
see (from the applied state, or from manifest files), and the clients runs share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from afctl.manifests.catalog import Catalog as Catalog
from afctl.providers.models import ModelConfig
from afctl.providers.pool import ProviderPool
from afctl.tool_context import ToolContext

if TYPE_CHECKING:
    from afctl.tools.mcp_tool import McpPool


@dataclass
class RunEnvironment(ToolContext):
    providers: ProviderPool | None = None
    """Shared SDK clients; without one, a run creates and closes its own."""
    mcp: McpPool | None = None
    """MCP servers shared by the runs of an event loop; without one, a run starts (on first
    use) and stops its own."""

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

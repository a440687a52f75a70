"""Plugins: pluggy hooks, discovered through the `afctl` entry-point group.

A plugin package declares `[project.entry-points.afctl] myplugin = "myplugin.hooks"` and
implements any of the hooks below with `@afctl.plugins.hookimpl`. afctl's own providers and tool
types register through the same hooks, which keeps the hook API honest. `AFCTL_PLUGINS=0`
turns third-party plugins off (the test suite does, unless a test asks for them).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from afctl.eval.assertions import Outcome
    from afctl.providers.models import ModelConfig
    from afctl.providers.types import Provider
    from afctl.runtime.environment import RunEnvironment
    from afctl.tools.base import Tool

hookspec = pluggy.HookspecMarker("afctl")
hookimpl = pluggy.HookimplMarker("afctl")

ProviderFactory = Callable[["ModelConfig", "RunEnvironment"], "Provider"]
"""Builds a provider for a model; reads secrets through the environment (they get redacted)."""
ToolFactory = Callable[[str, dict[str, Any], "RunEnvironment"], "Tool"]
"""Builds a tool from its name and Tool spec."""
AssertionCheck = Callable[[dict[str, Any], "Outcome"], "bool | tuple[bool, str]"]
"""Checks an eval case's outcome against an assertion as written (its `type` and any other
fields); returns whether it held, optionally with the reason."""


class HookSpecs:
    @hookspec
    def register_providers(self) -> dict[str, ProviderFactory]:  # type: ignore[empty-body]
        """Model providers this plugin offers, by provider name (the part before the `/`)."""

    @hookspec
    def register_tools(self) -> dict[str, ToolFactory]:  # type: ignore[empty-body]
        """Tool types this plugin offers, by `spec.type`."""

    @hookspec
    def register_assertions(self) -> dict[str, AssertionCheck]:  # type: ignore[empty-body]
        """Eval assertion types this plugin offers, by `type` (their `not_` forms come free)."""


@cache
def plugin_manager() -> pluggy.PluginManager:
    from afctl.providers import builtin as builtin_providers
    from afctl.tools import registry as builtin_tools

    manager = pluggy.PluginManager("afctl")
    manager.add_hookspecs(HookSpecs)
    manager.register(builtin_providers, name="afctl.providers")
    manager.register(builtin_tools, name="afctl.tools")
    if os.environ.get("AFCTL_PLUGINS", "1") != "0":
        manager.load_setuptools_entrypoints("afctl")
    return manager


def _merged(results: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for result in reversed(results):  # pluggy calls the latest registered first
        merged.update(result or {})
    return merged


def providers() -> dict[str, ProviderFactory]:
    return _merged(plugin_manager().hook.register_providers())


def tool_types() -> dict[str, ToolFactory]:
    return _merged(plugin_manager().hook.register_tools())


def assertion_types() -> dict[str, AssertionCheck]:
    return _merged(plugin_manager().hook.register_assertions())

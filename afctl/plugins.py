"""Plugins: pluggy hooks, discovered through the `afctl` entry-point group.

A plugin package declares `[project.entry-points.afctl] myplugin = "myplugin.hooks"` and
implements any of the hooks below with `@afctl.plugins.hookimpl`. afctl's own providers, tool
types and assertions register through the same hooks, as default plugins named by module path
(so this module imports no other afctl module and sits below everything that registers).
`AFCTL_PLUGINS=0` turns third-party plugins off (the test suite does, unless a test asks).

What the factories receive and return (typed where they are defined):
- a provider factory `(ModelConfig, ToolContext) -> Provider` (`afctl.providers.types`);
- a tool factory `(name, spec, ToolContext) -> Tool` (`afctl.tools.base`);
- an assertion check `(assertion, Outcome) -> bool | (bool, reason)` (`afctl.eval.outcome`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("afctl")
hookimpl = pluggy.HookimplMarker("afctl")

Factory = Callable[..., Any]
DEFAULT_PLUGINS = (
    "afctl.providers.builtin",
    "afctl.tools.registry",
    "afctl.eval.builtin_assertions",
)
"""afctl's own registrations, loaded by module path when the plugin manager is first used."""


class HookSpecs:
    @hookspec
    def register_providers(self) -> dict[str, Factory]:  # type: ignore[empty-body]
        """Model providers this plugin offers, by provider name (the part before the `/`)."""

    @hookspec
    def register_tools(self) -> dict[str, Factory]:  # type: ignore[empty-body]
        """Tool types this plugin offers, by `spec.type`."""

    @hookspec
    def register_assertions(self) -> dict[str, Factory]:  # type: ignore[empty-body]
        """Eval assertion types this plugin offers, by `type` (their `not_` forms come free)."""


@cache
def plugin_manager() -> pluggy.PluginManager:
    import importlib

    manager = pluggy.PluginManager("afctl")
    manager.add_hookspecs(HookSpecs)
    for module in DEFAULT_PLUGINS:
        manager.register(importlib.import_module(module), name=module)
    if os.environ.get("AFCTL_PLUGINS", "1") != "0":
        manager.load_setuptools_entrypoints("afctl")
    return manager


def _merged(results: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for result in reversed(results):  # pluggy calls the latest registered first
        merged.update(result or {})
    return merged


def providers() -> dict[str, Factory]:
    return _merged(plugin_manager().hook.register_providers())


def tool_types() -> dict[str, Factory]:
    return _merged(plugin_manager().hook.register_tools())


def assertion_types() -> dict[str, Factory]:
    return _merged(plugin_manager().hook.register_assertions())

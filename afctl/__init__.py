"""afctl: a declarative, YAML-driven toolchain for AI agents.

The public API is re-exported here and imported lazily, so `import afctl` (and `afctl --help`)
stays fast: nothing heavy loads until a name is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from afctl._version import __version__

if TYPE_CHECKING:
    from afctl.client import AsyncClient, Client
    from afctl.console import Console
    from afctl.context import AsyncContext, Context, load, run, validate
    from afctl.diagnostics import Diagnostic, Severity
    from afctl.errors import (
        AfctlError,
        ChecksFailed,
        ManifestError,
        RunError,
        StateConflict,
        UsageError,
        UserError,
    )
    from afctl.manifests.model import Manifest, ManifestSet
    from afctl.manifests.validate import ValidationResult
    from afctl.runtime.agent import RunResult
    from afctl.tools.decorator import tool

__all__ = [
    "AfctlError",
    "AsyncClient",
    "AsyncContext",
    "ChecksFailed",
    "Client",
    "Console",
    "Context",
    "Diagnostic",
    "Manifest",
    "ManifestError",
    "ManifestSet",
    "RunError",
    "RunResult",
    "Severity",
    "StateConflict",
    "UsageError",
    "UserError",
    "ValidationResult",
    "__version__",
    "load",
    "run",
    "tool",
    "validate",
]

_LAZY = {
    "AsyncClient": "afctl.client",
    "AsyncContext": "afctl.context",
    "Client": "afctl.client",
    "Console": "afctl.console",
    "Context": "afctl.context",
    "load": "afctl.context",
    "run": "afctl.context",
    "RunResult": "afctl.runtime.agent",
    "tool": "afctl.tools.decorator",
    "validate": "afctl.context",
    "Diagnostic": "afctl.diagnostics",
    "Severity": "afctl.diagnostics",
    "AfctlError": "afctl.errors",
    "ChecksFailed": "afctl.errors",
    "ManifestError": "afctl.errors",
    "RunError": "afctl.errors",
    "StateConflict": "afctl.errors",
    "UsageError": "afctl.errors",
    "UserError": "afctl.errors",
    "Manifest": "afctl.manifests.model",
    "ManifestSet": "afctl.manifests.model",
    "ValidationResult": "afctl.manifests.validate",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'afctl' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)

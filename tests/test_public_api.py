from __future__ import annotations

import subprocess
import sys

import pytest

import afctl

EXPORTED = [
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


def test_exported_members_are_pinned():
    assert afctl.__all__ == EXPORTED
    for name in EXPORTED:
        assert getattr(afctl, name) is not None
    assert dir(afctl) == sorted(EXPORTED)
    with pytest.raises(AttributeError):
        afctl.nonexistent  # noqa: B018


def test_error_tree_and_exit_codes():
    assert issubclass(afctl.ManifestError, afctl.UserError)
    for cls, code in [
        (afctl.AfctlError, 1),
        (afctl.UsageError, 64),
        (afctl.UserError, 3),
        (afctl.ManifestError, 3),
        (afctl.StateConflict, 4),
        (afctl.RunError, 1),
        (afctl.ChecksFailed, 5),
    ]:
        assert issubclass(cls, afctl.AfctlError)
        assert cls.exit_code == code


def test_importing_afctl_is_cheap():
    code = "import sys, afctl; print(sorted(m for m in sys.modules if m.startswith('afctl')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert out.strip() == "['afctl', 'afctl._version']"

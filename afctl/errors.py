"""The exceptions afctl raises, each carrying the exit code the CLI reports for it.

    AfctlError                 exit 1   anything afctl itself could not do
    ├── UsageError             exit 64  a flag, argument or path the user gave is wrong
    ├── UserError              exit 3   manifests or a policy say no
    │   └── ManifestError      exit 3   ...with the diagnostics that explain why
    ├── StateConflict          exit 4   lock held, stale plan, environment mismatch
    ├── RunError               exit 1   a provider, tool or runtime failure
    ├── DatabaseUnavailable    exit 1   the configured database cannot be used as it is
    ├── BrokerUnavailable      exit 1   the configured broker (Redis) cannot be reached
    └── ChecksFailed           exit 5   eval assertions or thresholds failed

The CLI maps these in one place; the core raises them and never prints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from afctl.diagnostics import Diagnostic

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_CHANGES = 2
EXIT_INVALID = 3
EXIT_CONFLICT = 4
EXIT_CHECKS_FAILED = 5
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130


class AfctlError(Exception):
    """Root of every error afctl raises on purpose."""

    exit_code: ClassVar[int] = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(AfctlError):
    """A flag, argument or path given on the command line (or to the API) is wrong."""

    exit_code = EXIT_USAGE


class UserError(AfctlError):
    """The user's manifests or a policy prevent the operation."""

    exit_code = EXIT_INVALID


class ManifestError(UserError):
    """Manifests failed validation; `diagnostics` lists every problem found."""

    def __init__(
        self,
        diagnostics: Sequence[Diagnostic],
        message: str | None = None,
        sources: Mapping[str, str] | None = None,
    ) -> None:
        errors = [d for d in diagnostics if d.is_error]
        super().__init__(message or f"{len(errors)} problem(s) found in the manifests")
        self.diagnostics = list(diagnostics)
        self.sources = dict(sources or {})
        """Text of the files with problems, for source snippets."""


class StateConflict(AfctlError):
    """The workspace state is locked, moved on, or belongs to another environment."""

    exit_code = EXIT_CONFLICT


class DatabaseUnavailable(AfctlError):
    """The configured database cannot be reached, refuses the login, or lacks migrations."""


class BrokerUnavailable(AfctlError):
    """The configured broker cannot be reached or refuses the login."""


class RunError(AfctlError):
    """A model provider, tool or the runtime failed."""

    exit_code = EXIT_ERROR


class ChecksFailed(AfctlError):
    """Eval assertions or thresholds failed."""

    exit_code = EXIT_CHECKS_FAILED

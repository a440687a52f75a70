"""Secrets: resolved at the moment of use, remembered, and redacted from everything written.

A `Secrets` object belongs to one run. Every value it hands out (API keys, `${env:...}`
values) is remembered, and `redact` replaces each of them, plus strings shaped like common API
keys and tokens, before anything reaches the prompt log, an error message or a report.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from afctl.errors import UserError
from afctl.safety import interpolation

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4
"""Shorter values are not redacted: replacing every "ab" would wreck the log, not protect it."""

TOKEN_SHAPES = re.compile(
    r"(?:sk-ant-[A-Za-z0-9_\-]{20,}"
    r"|sk-(?:proj-|svcacct-)?[A-Za-z0-9_\-]{20,}"
    r"|AKIA[0-9A-Z]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}"
    r"|afk_[A-Za-z0-9_\-]{20,})"
)
"""Well-known credential formats: OpenAI, Anthropic, AWS, GitHub, Slack, Google, JWTs, and
afctl's own API keys."""
_TOKEN_STARTS = ("sk-", "AKIA", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox", "AIza", "eyJ",
                 "afk_")  # fmt: skip
"""Every TOKEN_SHAPES match contains one of these: text without any skips the regex."""
_BLOCKS = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


class Secrets:
    def __init__(
        self, env: Mapping[str, str] | None = None, variables: Mapping[str, str] | None = None
    ) -> None:
        self._env = os.environ if env is None else env
        self._variables = variables or {}
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def remember(self, value: str | None) -> None:
        if value and len(value) >= MIN_SECRET_LENGTH and value not in self._values:
            self._values.add(value)
            self._values.add(json.dumps(value)[1:-1])  # as it appears inside JSON text
            self._pattern = None
            if self is not PROCESS:
                PROCESS.remember(value)

    def forget(self) -> None:
        """Forget every remembered value (a fresh process's state: tests start from it)."""
        self._values.clear()
        self._pattern = None

    def values(self) -> set[str]:
        """The remembered secret values (as given, and as they appear inside JSON)."""
        return set(self._values)

    def env(self, name: str) -> str | None:
        """An environment variable's value, remembered as a secret."""
        value = self._env.get(name)
        self.remember(value)
        return value

    def resolve(self, text: str) -> str:
        """`text` with its `${env:...}`/`${var:...}` references replaced; env values remembered."""
        for found in interpolation.scan(text):
            if isinstance(found, interpolation.Reference) and found.source == "env":
                self.remember(self._env.get(found.name))
        return interpolation.resolve(text, self._env, self._variables)

    def render(self, template: str, context: Mapping[str, Any]) -> str:
        """A template written in a manifest, rendered over `context` (arguments a model chose,
        inputs, webhook bodies, tool results) with the template's own `${env:...}` and
        `${var:...}` references resolved, and only those: a reference that arrives inside a
        rendered value stays as text, so a model can never ask for a secret.

        Raises:
            UserError: a reference is not set, malformed, or written inside a `{{ }}` block.
            jinja2.TemplateError, TemplateFailure: the template fails.
        """
        from afctl.safety.templates import is_template
        from afctl.safety.templates import render as render_template

        if not is_template(template):
            return self.resolve(template)
        if "${" not in template:
            return render_template(template, context)
        blocks = [m.span() for m in _BLOCKS.finditer(template)]
        values: dict[str, str] = {}
        pieces: list[str] = []
        last = 0
        for match in interpolation.TOKEN.finditer(template):
            start, end = match.span()
            if any(a <= start < b for a, b in blocks):
                raise UserError(
                    f"{match.group(0)} is written inside a {{{{ }}}} or {{% %}} block",
                    hint="write ${env:...} references outside template blocks",
                )
            name = f"afctl_ref_{len(values)}"
            if match.group(0) == "$${":
                values[name] = "${"
            else:
                values[name] = self.resolve(match.group(0))
            pieces += [template[last:start], "{{ ", name, " }}"]
            last = end
        pieces.append(template[last:])
        return render_template("".join(pieces), {**context, **values})

    def redact(self, text: str) -> str:
        """`text` without any remembered secret or token-shaped string."""
        if not text:
            return text
        # a substring search per secret is far cheaper than the regex; most text has none
        if self._values and any(value in text for value in self._values):
            if self._pattern is None:
                ordered = sorted(self._values, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(v) for v in ordered))
            text = self._pattern.sub(REDACTED, text)
        if not any(start in text for start in _TOKEN_STARTS):
            return text
        return TOKEN_SHAPES.sub(REDACTED, text)


def looks_like_secret(text: str) -> bool:
    """Whether `text` holds a string shaped like a well-known credential."""
    return any(start in text for start in _TOKEN_STARTS) and TOKEN_SHAPES.search(text) is not None


PROCESS = Secrets(env={})
"""Every secret any run of this process resolved: reports, error messages and afctl's own log
are redacted with it (`redact_known`), whichever run the text came from."""


def redact_known(text: str) -> str:
    """`text` without any secret this process has handed out, or any token-shaped string."""
    return PROCESS.redact(text)

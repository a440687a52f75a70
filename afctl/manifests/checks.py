"""Checks on one manifest beyond its schema: templates, expressions, regexes, embedded JSON
Schemas, `${...}` references, model names and workflow step graphs.

What to check where comes from the schema annotations (see `afctl.manifests.schema`); this
module only knows how to check each kind of value. It also collects the document's references
to other resources, which `afctl.manifests.references` resolves across files.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from afctl.diagnostics import Diagnostic, did_you_mean, error, warning
from afctl.manifests.graph import find_cycles
from afctl.manifests.positions import Position, locate, make_pointer
from afctl.manifests.references import Ref
from afctl.manifests.schema import annotated_values
from afctl.manifests.schema_errors import dotted
from afctl.safety import interpolation
from afctl.safety.expr import ExpressionError, parse_expression
from afctl.safety.templates import check_template

PROVIDERS = ("openai", "anthropic", "openai-compatible", "ollama", "vllm", "lmstudio", "local")
"""Model providers afctl itself knows; plugins may add more (see `known_provider`)."""


def known_provider(name: str) -> bool:
    """A built-in provider, or one a plugin registers (plugins load only for unknown names)."""
    if name in PROVIDERS:
        return True
    from afctl.plugins import providers

    return name in providers()


BUILTIN_ASSERTIONS = (
    "equals", "contains", "icontains", "contains_any", "contains_all", "starts_with", "regex",
    "is_json", "json_schema", "json_path", "tool_called", "tool_sequence", "tool_args",
    "handoff_to", "guardrail_blocked", "latency", "cost", "tokens", "expression", "python",
    "similar", "llm_judge",
)  # fmt: skip
"""Eval assertion types afctl itself checks; plugins may add more (see `known_assertion`)."""


def known_assertion(kind: str) -> bool:
    """A built-in assertion type or one a plugin registers, or its `not_` form (plugins load
    only for names afctl does not know)."""
    base = kind.removeprefix("not_")
    if base in BUILTIN_ASSERTIONS:
        return True
    from afctl.plugins import assertion_types

    return base in assertion_types()


LOCAL_MODELS = ("echo", "scripted", "hashing")
BUILTIN_TOOL_PREFIX = "builtin/"
KNOWN_METASCHEMAS = frozenset(
    f"{scheme}://json-schema.org/{draft}"
    for scheme in ("http", "https")
    for draft in (
        "draft-04/schema",
        "draft-06/schema",
        "draft-07/schema",
        "draft/2019-09/schema",
        "draft/2020-12/schema",
    )
)
"""Meta-schemas jsonschema-rs ships; any other `$schema` would make it fetch one: refused."""


class DocumentChecker:
    """Runs every semantic check on one document of a known kind."""

    def __init__(
        self,
        kind: str,
        data: dict[str, Any],
        positions: Position,
        where: dict[str, Any],
        text: str | None,
        *,
        may_have_templates: bool = True,
        may_have_references: bool = True,
        may_have_secrets: bool = True,
    ) -> None:
        self.may_have_secrets = may_have_secrets
        """False when nothing in the file is shaped like a credential."""
        self.may_have_templates = may_have_templates
        """False when the file has no `{{`, `{%` or `{#`: template checks are skipped."""
        self.may_have_references = may_have_references
        """False when the file has no `${`: reference checks are skipped."""
        self.kind = kind
        self.data = data
        self.positions = positions
        self.where = where
        self.text = text
        self.diagnostics: list[Diagnostic] = []
        self.refs: list[Ref] = []

    def run(self) -> None:
        for parts, value, keyword, annotation in annotated_values(self.kind, self.data):
            if keyword == "x-afctl-template" and not self.may_have_templates:
                continue
            _CHECKS[keyword](self, parts, value, annotation)
        if self.may_have_references:
            self._check_references_syntax()
        if self.may_have_secrets:
            self._check_secret_literals()
        if self.kind == "Workflow":
            self._check_workflow_steps()

    # -- helpers ---------------------------------------------------------------------------

    def at(self, parts: Sequence[str | int], *, key: bool = False) -> dict[str, Any]:
        line, col = locate(self.positions, parts, key=key)
        return {**self.where, "line": line + 1, "col": col + 1, "pointer": make_pointer(parts)}

    def add(
        self,
        code: str,
        summary: str,
        parts: Sequence[str | int],
        hint: str | None = None,
        *,
        severe: bool = True,
    ) -> None:
        made = error if severe else warning
        self.diagnostics.append(made(code, summary, hint=hint, **self.at(parts)))

    def _content_line(self, parts: Sequence[str | int], line_in_value: int) -> dict[str, Any]:
        """Where line `line_in_value` (1-based) of a string value sits in the file."""
        where = self.at(parts)
        lines = self.text.splitlines() if self.text is not None else []
        index = where["line"] - 1
        if index < len(lines) and lines[index][where["col"] - 1 :][:1] in ("|", ">"):
            # a block scalar: its text starts on the line after the indicator
            index += 1
            if index < len(lines):
                where["col"] = len(lines[index]) - len(lines[index].lstrip()) + 1
        where["line"] = index + line_in_value
        return where

    # -- checks by annotation --------------------------------------------------------------

    def check_template(self, parts: Sequence[str | int], value: Any, _: Any) -> None:
        for sub_parts, text in _strings(value, tuple(parts)):
            problem = check_template(text)
            if problem is not None:
                self.diagnostics.append(
                    error(
                        "template.syntax",
                        f"invalid template in {dotted(sub_parts)}: {problem.message}",
                        hint="templates use jinja2 syntax: {{ vars.name }}, {% if ... %}",
                        **self._content_line(sub_parts, problem.line),
                    )
                )

    def check_expression(self, parts: Sequence[str | int], value: Any, names: Any) -> None:
        if not isinstance(value, str):
            return
        try:
            parse_expression(value, names if isinstance(names, list) else None)
        except ExpressionError as exc:
            self.add(
                "expr.invalid",
                f"invalid expression in {dotted(parts)}: {exc.message}",
                parts,
                hint=exc.hint,
            )

    def check_regex(self, parts: Sequence[str | int], value: Any, _: Any) -> None:
        if not isinstance(value, str):
            return
        from afctl.safety.regex import check

        problem = check(value)
        if problem is not None:
            self.add(
                "regex.invalid", f"invalid regular expression in {dotted(parts)}: {problem}", parts
            )

    def check_jsonschema(self, parts: Sequence[str | int], value: Any, _: Any) -> None:
        if not isinstance(value, dict):
            return
        remote = list(_remote_refs(value, tuple(parts)))
        for ref_parts, ref in remote:
            self.add(
                "jsonschema.remote-ref",
                f'{dotted(ref_parts)} refers to "{ref}"; afctl never fetches schemas',
                ref_parts,
                hint="use a local reference (#/$defs/...) and put the definition in the schema",
            )
        if remote:
            return
        declared = value.get("$schema")
        if declared is not None and (
            not isinstance(declared, str) or declared.rstrip("#") not in KNOWN_METASCHEMAS
        ):
            self.add(
                "jsonschema.unknown-dialect",
                f"{dotted(parts)} declares an unknown $schema {declared!r}",
                [*parts, "$schema"],
                hint="use https://json-schema.org/draft/2020-12/schema or leave $schema out",
            )
            return  # the validator would try to fetch an unknown meta-schema
        import jsonschema_rs

        try:
            jsonschema_rs.meta.validate(value)
        except jsonschema_rs.ValidationError as exc:
            self.add(
                "jsonschema.invalid",
                f"{dotted(parts)} is not a valid JSON Schema: {exc.message}",
                [*parts, *exc.instance_path],
            )
        except Exception as exc:
            self.add("jsonschema.invalid", f"{dotted(parts)} is not a JSON Schema: {exc}", parts)

    def check_provider(self, parts: Sequence[str | int], value: Any, _: Any) -> None:
        if isinstance(value, str) and not known_provider(value):
            self.add(
                "model.provider",
                f'unknown model provider "{value}"',
                parts,
                hint=did_you_mean(value, PROVIDERS) or "known providers: " + ", ".join(PROVIDERS),
            )

    def check_assertion(self, parts: Sequence[str | int], value: Any, _: Any) -> None:
        if isinstance(value, str) and not known_assertion(value):
            self.add(
                "eval.assertion",
                f'unknown assertion type "{value}"',
                parts,
                hint=did_you_mean(value.removeprefix("not_"), BUILTIN_ASSERTIONS)
                or "built-in types: "
                + ", ".join(BUILTIN_ASSERTIONS)
                + "; plugins can register more",
            )

    def collect_ref(self, parts: Sequence[str | int], value: Any, kind: Any) -> None:
        if not isinstance(value, str) or not value:
            return
        if kind == "Tool" and value.startswith(BUILTIN_TOOL_PREFIX):
            return
        if kind == "Model" and "/" in value:
            self._check_model_string(parts, value)
            return
        where = self.at(parts)
        self.refs.append(Ref(kind, value, where["pointer"], where["line"], where["col"]))

    def _check_model_string(self, parts: Sequence[str | int], value: str) -> None:
        provider, _, model = value.partition("/")
        if not known_provider(provider):
            self.add(
                "model.provider",
                f'unknown model provider "{provider}" in "{value}"',
                parts,
                hint=did_you_mean(provider, PROVIDERS)
                or "known providers: " + ", ".join(PROVIDERS),
            )
        elif not model:
            self.add(
                "model.name",
                f'"{value}" names no model after the provider',
                parts,
                hint=f"write {provider}/<model>",
            )
        elif provider in ("openai", "anthropic") and not _known_model(provider, model):
            from afctl.pricing import PRICES

            self.add(
                "model.unknown",
                f'"{value}" is not a model afctl knows {provider} to offer',
                parts,
                hint=did_you_mean(model, PRICES[provider])
                or "a new model works if the provider has it; a typo fails only when it runs",
                severe=False,
            )
        elif provider == "local" and model not in LOCAL_MODELS:
            self.add(
                "model.name",
                f'unknown offline model "{value}"',
                parts,
                hint=did_you_mean(model, LOCAL_MODELS)
                or "offline models: " + ", ".join(f"local/{m}" for m in LOCAL_MODELS),
            )

    # -- checks on the whole document ------------------------------------------------------

    def _check_references_syntax(self) -> None:
        for parts, text in _strings(self.data, ()):
            for found in interpolation.scan(text):
                if isinstance(found, interpolation.MalformedReference):
                    self.add("ref.malformed", found.message, parts, hint=found.hint)

    def _check_secret_literals(self) -> None:
        """A key pasted into a manifest would be stored in state and shown by get: refuse it
        (every string is looked at; only text shaped like a known credential is refused)."""
        from afctl.safety.secrets import looks_like_secret

        for parts, text in _strings(self.data, ()):
            if looks_like_secret(text):
                self.add(
                    "secret.literal",
                    f"{dotted(parts)} holds what looks like a secret (an API key or token)",
                    parts,
                    hint="keep it out of the manifest: write ${env:NAME} and set NAME in the "
                    "environment (it is resolved only when used, and redacted)",
                )

    def _check_workflow_steps(self) -> None:
        spec = self.data.get("spec")
        steps = spec.get("steps") if isinstance(spec, dict) else None
        if not isinstance(steps, list):
            return
        ids: dict[str, int] = {}
        for index, step in enumerate(steps):
            step_id = step.get("id") if isinstance(step, dict) else None
            if not isinstance(step_id, str):
                continue
            if step_id in ids:
                self.add(
                    "workflow.duplicate-step",
                    f'step id "{step_id}" is used twice (first by step {ids[step_id] + 1})',
                    ["spec", "steps", index, "id"],
                    hint="give every step its own id",
                )
            else:
                ids[step_id] = index
        graph: dict[str, list[str]] = {}
        for index, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            base: list[str | int] = ["spec", "steps", index]
            own = step.get("id")
            edges: list[str] = []
            for field in ("needs", "needs_any"):
                needed = step.get(field)
                if not isinstance(needed, list):
                    continue
                for position, name in enumerate(needed):
                    if not isinstance(name, str):
                        continue
                    if name == own:
                        self.add(
                            "workflow.needs",
                            f'step "{own}" needs itself',
                            [*base, field, position],
                        )
                    elif name not in ids:
                        self.add(
                            "workflow.needs",
                            f'step "{own}" needs unknown step "{name}"',
                            [*base, field, position],
                            hint=did_you_mean(name, ids) or "steps: " + ", ".join(ids),
                        )
                    else:
                        edges.append(name)
            on_error = step.get("on_error")
            if isinstance(on_error, str) and on_error not in ("fail", "continue"):
                if on_error not in ids:
                    self.add(
                        "workflow.on-error",
                        f'on_error names unknown step "{on_error}"',
                        [*base, "on_error"],
                        hint=did_you_mean(on_error, ids)
                        or "use fail, continue, or the id of a step",
                    )
                elif on_error == own:
                    self.add(
                        "workflow.on-error",
                        f'step "{own}" handles its own error',
                        [*base, "on_error"],
                    )
            if isinstance(own, str) and own not in graph:
                graph[own] = edges
        for cycle in find_cycles(graph):
            first = cycle[0]
            self.add(
                "workflow.cycle",
                "steps depend on each other in a cycle: " + " → ".join([*cycle, first]),
                ["spec", "steps", ids[first], "needs"],
                hint="remove one of the needs so the steps can run in order",
            )


_CHECKS = {
    "x-afctl-template": DocumentChecker.check_template,
    "x-afctl-expression": DocumentChecker.check_expression,
    "x-afctl-regex": DocumentChecker.check_regex,
    "x-afctl-jsonschema": DocumentChecker.check_jsonschema,
    "x-afctl-provider": DocumentChecker.check_provider,
    "x-afctl-assertion": DocumentChecker.check_assertion,
    "x-afctl-ref": DocumentChecker.collect_ref,
}


def _known_model(provider: str, model: str) -> bool:
    """Whether afctl's price table knows `model` (or a dated version of one) at `provider`."""
    from afctl.pricing import builtin_price

    return builtin_price(provider, model) is not None


def _strings(
    value: Any, parts: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Every string inside `value` (not keys), with its path."""
    if isinstance(value, str):
        yield parts, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*parts, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*parts, index))


def _remote_refs(
    value: Any, parts: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("$ref", "$dynamicRef") and isinstance(item, str):
                if not item.startswith("#"):
                    yield (*parts, key), item
            else:
                yield from _remote_refs(item, (*parts, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _remote_refs(item, (*parts, index))

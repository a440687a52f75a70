"""A blueprint folder: `blueprint.yaml` (kind Blueprint), `manifests/` (YAML templates over
`params`), and optionally `tools/`, `knowledge/`, `evals/` and `README.md`.

Values: the parameters' JSON Schema defaults, then each `-f values.yaml` in order, then each
`--set name=value` (dotted names reach into objects; values read as YAML scalars): the
right-most wins. The result must satisfy the parameters schema. Manifests render in jinja2's
immutable sandbox with StrictUndefined, within the render budget, over `params` and
`blueprint` (its name and version).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from afctl.diagnostics import Diagnostic, error, warning
from afctl.errors import ManifestError, UsageError

if TYPE_CHECKING:
    from afctl.safety.capabilities import Capabilities

SKIPPED = {".afctl", ".git", "__pycache__", ".pytest_cache", ".mypy_cache", ".venv"}
"""Folders that never belong to a blueprint."""
MANIFEST_SUFFIXES = (".yaml", ".yml")


@dataclass
class Blueprint:
    root: Path
    document: dict[str, Any]

    @property
    def name(self) -> str:
        return str((self.document.get("metadata") or {}).get("name"))

    @property
    def version(self) -> str:
        return str((self.document.get("spec") or {}).get("version"))

    @property
    def capabilities(self) -> Capabilities:
        """What it declares it may do beyond talking to models."""
        from afctl.safety.capabilities import Capabilities

        return Capabilities.parse((self.document.get("spec") or {}).get("capabilities"))

    @property
    def parameters(self) -> dict[str, Any]:
        schema = (self.document.get("spec") or {}).get("parameters")
        return schema if isinstance(schema, dict) else {"type": "object"}

    def files(self) -> list[str]:
        """Every file of the blueprint, relative and sorted (caches and VCS folders left out)."""
        found = []
        for path in sorted(self.root.rglob("*")):
            relative = path.relative_to(self.root)
            if any(part in SKIPPED for part in relative.parts) or path.suffix == ".pyc":
                continue
            if path.is_symlink():
                raise UsageError(f"{path}: a blueprint holds no symbolic links")
            if path.is_file():
                found.append(relative.as_posix())
        return found

    def templates(self) -> list[str]:
        return [
            f for f in self.files() if f.startswith("manifests/") and f.endswith(MANIFEST_SUFFIXES)
        ]


def load(folder: Path) -> Blueprint:
    """The blueprint in `folder`, its `blueprint.yaml` validated.

    Raises:
        UsageError: there is no blueprint.yaml.
        ManifestError: blueprint.yaml is invalid.
    """
    from afctl.manifests.validate import validate_paths

    file = folder / "blueprint.yaml"
    if not file.is_file():
        raise UsageError(f"{folder} has no blueprint.yaml", hint="afctl blueprint lint DIR")
    result, manifests = validate_paths([str(file)])
    if not result.valid:
        raise ManifestError(result.diagnostics, sources=result.sources)
    documents = [m for m in manifests if m.kind == "Blueprint"]
    if len(documents) != 1:
        raise UsageError(f"{file} must hold exactly one document of kind Blueprint")
    return Blueprint(folder.resolve(), documents[0].data)


def defaults(schema: dict[str, Any]) -> dict[str, Any]:
    """The defaults a parameters schema declares (nested objects included)."""
    from afctl.tools.base import with_defaults

    filled: dict[str, Any] = with_defaults(schema, {})
    return filled


def values_of(blueprint: Blueprint, sets: list[str], files: list[str]) -> dict[str, Any]:
    """Defaults ← values files in order ← `--set` in order; checked against the schema.

    Raises:
        UsageError: a file or `--set` cannot be read, or the values do not fit the schema.
    """
    from afctl.manifests.yaml_loader import load_bytes, load_mapping
    from afctl.tools.base import Validator

    values = defaults(blueprint.parameters)
    for name in files:
        _merge(values, load_mapping(name, "-f", "YAML mapping of parameter values"))
    for item in sets:
        key, equals, text = item.partition("=")
        if not equals or not key.strip():
            raise UsageError(f"--set {item}: write NAME=VALUE (NAME may be dotted: a.b=1)")
        loaded = load_bytes(text.encode(), "--set")
        value = loaded.documents[0].data if loaded.documents else text
        if any(d.is_error for d in loaded.diagnostics):
            value = text
        target = values
        *parents, last = key.strip().split(".")
        for part in parents:
            nested = target.get(part)
            target = (
                target.setdefault(part, {}) if isinstance(nested, dict) or nested is None else {}
            )
        target[last] = value
    problems = Validator(blueprint.parameters).problems(values)
    if problems:
        raise UsageError(
            f"blueprint {blueprint.name}: the values do not fit its parameters: "
            + "; ".join(p.replace("arguments", "values") for p in problems),
            hint="see the parameters in blueprint.yaml; pass --set NAME=VALUE or -f values.yaml",
        )
    return values


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


@dataclass(frozen=True)
class Rendered:
    path: str
    """Relative to the blueprint (`manifests/agent.yaml`)."""
    text: str


def render(blueprint: Blueprint, values: dict[str, Any]) -> list[Rendered]:
    """Every manifest template rendered over the values.

    Raises:
        ManifestError: a template fails (its file and line named).
    """
    from jinja2 import TemplateError, TemplateSyntaxError

    from afctl.safety.templates import TemplateFailure
    from afctl.safety.templates import render as render_text

    scope = {"params": values, "blueprint": {"name": blueprint.name, "version": blueprint.version}}
    rendered, problems = [], []
    for relative in blueprint.templates():
        text = (blueprint.root / relative).read_text("utf-8")
        try:
            rendered.append(Rendered(relative, render_text(text, scope)))
        except TemplateSyntaxError as exc:
            problems.append(
                error(
                    "blueprint.template",
                    f"invalid template: {exc.message}",
                    file=relative,
                    line=exc.lineno or 1,
                )
            )
        except (TemplateError, TemplateFailure) as exc:
            line = getattr(exc, "lineno", None) or 1
            problems.append(
                error(
                    "blueprint.template",
                    f"cannot render: {exc}",
                    file=relative,
                    line=line,
                    hint="every name comes from params or blueprint",
                )
            )
    if problems:
        raise ManifestError(problems)
    return rendered


def lint(blueprint: Blueprint) -> list[Diagnostic]:
    """What is wrong with a blueprint: undocumented parameters, no evals, templates that do
    not render with the defaults, rendered manifests that do not validate."""
    import tempfile

    from afctl.manifests.discovery import Source
    from afctl.manifests.validate import validate_sources

    problems: list[Diagnostic] = []
    for name, prop in (blueprint.parameters.get("properties") or {}).items():
        if not isinstance(prop, dict) or not prop.get("description"):
            problems.append(
                warning(
                    "blueprint.parameter",
                    f"parameter {name} has no description",
                    file="blueprint.yaml",
                    hint="say what it sets: users choose values from it",
                )
            )
    files = blueprint.files()
    if not blueprint.templates():
        problems.append(
            error("blueprint.manifests", "there is no manifests/*.yaml", file="blueprint.yaml")
        )
    evals = [f for f in files if f.startswith("evals/") and f.endswith(MANIFEST_SUFFIXES)]
    if not any(_holds_kind(blueprint.root / f, "EvalSuite") for f in evals):
        problems.append(
            warning(
                "blueprint.evals",
                "there is no eval suite under evals/",
                file="blueprint.yaml",
                hint="ship an EvalSuite that passes offline, so installers can check it",
            )
        )
    try:
        rendered = render(blueprint, values_of(blueprint, [], []))
    except ManifestError as exc:
        return problems + list(exc.diagnostics)
    except UsageError as exc:
        return [*problems, error("blueprint.parameters", exc.message, file="blueprint.yaml")]
    with tempfile.TemporaryDirectory(prefix="afctl-lint-") as scratch:
        sources = []
        for item in rendered:
            target = Path(scratch) / item.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(item.text, "utf-8")
            sources.append(Source(f"{item.path} (rendered)", str(target), str(target)))
        for relative in evals:  # suites validate together with what they test
            sources.append(Source(relative, str(blueprint.root / relative), relative))
        result, manifests = validate_sources(sources)
    if result.errors:
        return problems + result.errors
    from afctl.blueprints.uses import undeclared

    documents = [(m.kind, m.data, m.file, m.line) for m in manifests]
    return problems + undeclared(documents, blueprint.capabilities, blueprint.root)


def _holds_kind(path: Path, kind: str) -> bool:
    """Whether a YAML file has a document of `kind`."""
    from afctl.manifests.yaml_loader import load_bytes

    documents = load_bytes(path.read_bytes(), str(path)).documents
    return any(isinstance(d.data, dict) and d.data.get("kind") == kind for d in documents)


def metadata(blueprint: Blueprint) -> dict[str, Any]:
    """What registries list about a blueprint (the rendered metadata of MANIFEST.json)."""
    spec = blueprint.document.get("spec") or {}
    keys = (
        "version",
        "author",
        "category",
        "tags",
        "license",
        "homepage",
        "pricing",
        "parameters",
        "requires",
        "afctl_version",
        "capabilities",
    )
    return {
        "name": blueprint.name,
        "description": (blueprint.document.get("metadata") or {}).get("description"),
        **{k: spec[k] for k in keys if k in spec},
    }


def canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()

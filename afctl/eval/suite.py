"""An EvalSuite's cases, ready to run: inline cases and `dataset:` files (JSONL, CSV, YAML)
expanded, defaults applied, inputs rendered from their variables."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from afctl.errors import UsageError
from afctl.safety.capabilities import Grant


@dataclass
class Case:
    id: str
    template: Any
    """The input as written: a template over `vars`, rendered per variant."""
    vars: dict[str, Any]
    assertions: list[dict[str, Any]]
    threshold: float = 1.0
    tags: list[str] = field(default_factory=list)
    suite: str = ""

    def input_for(self, variant: Variant) -> Any:
        """The input rendered over the case's and variant's variables: text for an agent, a
        mapping of inputs for a workflow."""
        return _render(self.template, {**self.vars, **variant.vars}, self.suite)

    def vars_for(self, variant: Variant) -> dict[str, Any]:
        return {**self.vars, **variant.vars}


@dataclass(frozen=True)
class Variant:
    """One combination of the suite's `matrix`: a model, parameters, variables."""

    id: str
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    vars: dict[str, Any] = field(default_factory=dict)


def variants_of(matrix: dict[str, Any]) -> list[Variant]:
    """Every combination of the matrix's values, in a stable order (one default variant when
    there is no matrix)."""
    import itertools

    axes: list[tuple[str, str, list[Any]]] = []  # (where, name, values)
    for name in ("model", "temperature", "top_p", "max_tokens"):
        if name in matrix:
            axes.append(("model" if name == "model" else "params", name, list(matrix[name])))
    for name, values in sorted((matrix.get("params") or {}).items()):
        axes.append(("params", name, list(values)))
    for name, values in sorted((matrix.get("vars") or {}).items()):
        axes.append(("vars", name, list(values)))
    if not axes:
        return [Variant("default")]
    variants = []
    for combination in itertools.product(*(values for _, _, values in axes)):
        model, params, variables, parts = None, {}, {}, []
        for (where, name, _), value in zip(axes, combination, strict=True):
            parts.append(f"{name}={value}")
            if where == "model":
                model = str(value)
            elif where == "params":
                params[name] = value
            else:
                variables[name] = value
        variants.append(Variant(",".join(parts), model, params, variables))
    return variants


@dataclass
class Suite:
    name: str
    agent: str
    cases: list[Case]
    concurrency: int
    timeout_s: float | None
    pass_rate: float
    file: str
    variants: list[Variant] = field(default_factory=lambda: [Variant("default")])
    repeat: int = 1
    variant_pass_rate: float | None = None
    judge: str | None = None
    """The default model of llm_judge assertions."""
    agent_file: str | None = None
    """The file that defines the agent, when it is among the suite's files (not only applied)."""
    kind: str = "Agent"
    """What `agent` names: an Agent, or a Workflow."""
    max_error_rate: float = 0.0
    """The share of cases that may error (not answer) before the eval is an error."""
    grant: Grant | None = None
    """What its python and plugin assertions may run (a suite shipped in a blueprint runs
    under the blueprint's capabilities)."""

    @property
    def target(self) -> str:
        return f"{self.kind.lower()}/{self.agent}"

    @property
    def subject(self) -> str:
        """How reports name what is tested: the agent's name, or `workflow/NAME`."""
        return self.agent if self.kind == "Agent" else self.target


def load_suite(document: dict[str, Any], file: str, root: Path) -> Suite:
    """The suite of an EvalSuite document from `file`; datasets must be inside `root`.

    Raises:
        UsageError: a dataset cannot be read, or the suite uses what this version cannot run.
    """
    name = str((document.get("metadata") or {}).get("name"))
    spec = document.get("spec") or {}
    target = spec.get("target") or {}
    kind = "Agent" if "agent" in target else "Workflow"
    target_name = str(target.get("agent") or target.get("workflow"))
    matrix = spec.get("matrix") or {}
    if kind == "Workflow" and set(matrix) - {"vars"}:
        raise UsageError(
            f"eval suite {name}: a workflow's matrix varies only `vars`; its agents choose "
            "their own models and params"
        )
    defaults = spec.get("defaults") or {}
    base_vars = {**(spec.get("vars") or {}), **(defaults.get("vars") or {})}
    cases: list[Case] = []
    for index, entry in enumerate(spec.get("cases") or []):
        rows = [entry]
        if "dataset" in entry:
            path = (Path(file).parent / str(entry["dataset"])).resolve()
            if not path.is_relative_to(root.resolve()):
                raise UsageError(
                    f"eval suite {name}: dataset {entry['dataset']} is outside the repository"
                )
            rows = _dataset(path)
        for row_index, row in enumerate(rows):
            case_id = str(row.get("id") or entry.get("id") or "")
            if "dataset" in entry:
                case_id = f"{entry.get('id') or Path(entry['dataset']).stem}-{row_index + 1}"
            assertions = [*(defaults.get("assert") or []), *(entry.get("assert") or [])]
            if "expected" in row:
                assertions.append({"type": "equals", "value": str(row["expected"])})
            variables = {**base_vars, **(entry.get("vars") or {}), **(row.get("vars") or {})}
            case = Case(
                case_id or f"case-{index + 1}",
                row.get("input", {} if kind == "Workflow" else ""),
                variables,
                assertions,
                float(entry.get("threshold", defaults.get("threshold", 1.0))),
                list(entry.get("tags") or []),
                name,
            )
            cases.append(case)
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise UsageError(f"eval suite {name}: two cases have the id {case.id!r}")
        seen.add(case.id)
    variants = variants_of(matrix)
    for case in cases:  # a mistake shows now, not in the middle of the eval
        if kind == "Agent" and not isinstance(case.template, str):
            raise UsageError(f"eval suite {name}: case {case.id}: an agent's input is text")
        if kind == "Workflow" and not isinstance(case.template, dict):
            raise UsageError(
                f"eval suite {name}: case {case.id}: a workflow's input is a mapping of inputs"
            )
        for variant in variants:
            case.input_for(variant)
    thresholds = spec.get("thresholds") or {}
    variant_rate = thresholds.get("variant_pass_rate")
    return Suite(
        name,
        target_name,
        cases,
        int(spec.get("concurrency", 8)),
        spec.get("timeout_s"),
        float(thresholds.get("pass_rate", 1.0)),
        file,
        variants,
        int(spec.get("repeat", 1)),
        None if variant_rate is None else float(variant_rate),
        None if spec.get("judge") is None else str(spec["judge"]),
        kind=kind,
        max_error_rate=float(thresholds.get("max_error_rate", 0.0)),
    )


def _render(value: Any, variables: dict[str, Any], suite: str) -> Any:
    """An input rendered over the variables: text is a template; mappings and lists render
    each value.

    Raises:
        UsageError: it cannot be rendered.
    """
    from jinja2 import TemplateError

    from afctl.safety.templates import TemplateFailure, render

    if isinstance(value, dict):
        return {k: _render(v, variables, suite) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, variables, suite) for v in value]
    if not isinstance(value, str):
        return value
    try:
        return render(value, {"vars": variables})
    except (TemplateError, TemplateFailure) as exc:
        raise UsageError(f"eval suite {suite}: cannot render an input: {exc}") from None


def _dataset(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL, CSV or YAML dataset; CSV columns other than input, id and expected
    become variables."""
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the dataset {path}: {exc.strerror}") from None
    suffix = path.suffix.lower()
    rows: list[Any]
    if suffix == ".jsonl":
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    raise UsageError(f"{path}:{number}: not a JSON object") from None
    elif suffix == ".csv":
        rows = []
        for row in csv.DictReader(io.StringIO(text)):
            fixed = {k: row[k] for k in ("id", "input", "expected") if row.get(k)}
            fixed["vars"] = {k: v for k, v in row.items() if k not in ("id", "input", "expected")}
            rows.append(fixed)
    else:
        from afctl.manifests.yaml_loader import load_bytes

        loaded = load_bytes(text.encode(), str(path))
        if any(d.is_error for d in loaded.diagnostics) or not loaded.documents:
            raise UsageError(f"{path} is not a YAML list of cases")
        data = loaded.documents[0].data
        rows = data if isinstance(data, list) else []
    if not all(isinstance(row, dict) and "input" in row for row in rows):
        raise UsageError(f"{path}: every case needs an `input`")
    return rows

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
from afctl.eval.assertions import NOT_YET


@dataclass
class Case:
    id: str
    input: str
    vars: dict[str, Any]
    assertions: list[dict[str, Any]]
    threshold: float = 1.0
    tags: list[str] = field(default_factory=list)


@dataclass
class Suite:
    name: str
    agent: str
    cases: list[Case]
    concurrency: int
    timeout_s: float | None
    pass_rate: float
    file: str


_UNSUPPORTED = ("matrix", "repeat", "judge")
"""Fields of the schema this version does not run yet: refused, never silently ignored."""


def load_suite(document: dict[str, Any], file: str, root: Path) -> Suite:
    """The suite of an EvalSuite document from `file`; datasets must be inside `root`.

    Raises:
        UsageError: a dataset cannot be read, or the suite uses what this version cannot run.
    """
    name = str((document.get("metadata") or {}).get("name"))
    spec = document.get("spec") or {}
    target = spec.get("target") or {}
    if "agent" not in target:
        raise UsageError(f"eval suite {name}: only agents can be evaluated in this version")
    for key in _UNSUPPORTED:
        if key in spec and not (key == "repeat" and spec[key] == 1):
            raise UsageError(f"eval suite {name}: `{key}` is not available in this version yet")
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
            for assertion in assertions:
                kind = str(assertion.get("type", "")).removeprefix("not_")
                if kind in NOT_YET:
                    raise UsageError(f"eval suite {name}: {kind} assertions are not available yet")
            variables = {**base_vars, **(entry.get("vars") or {}), **(row.get("vars") or {})}
            cases.append(
                Case(
                    case_id or f"case-{index + 1}",
                    _render(row.get("input", ""), variables, name),
                    variables,
                    assertions,
                    float(entry.get("threshold", defaults.get("threshold", 1.0))),
                    list(entry.get("tags") or []),
                )
            )
    seen: set[str] = set()
    for case in cases:
        if case.id in seen:
            raise UsageError(f"eval suite {name}: two cases have the id {case.id!r}")
        seen.add(case.id)
    thresholds = spec.get("thresholds") or {}
    return Suite(
        name,
        str(target["agent"]),
        cases,
        int(spec.get("concurrency", 8)),
        spec.get("timeout_s"),
        float(thresholds.get("pass_rate", 1.0)),
        file,
    )


def _render(value: Any, variables: dict[str, Any], suite: str) -> str:
    from jinja2 import TemplateError

    from afctl.safety.templates import compiled, is_template

    if not isinstance(value, str):
        raise UsageError(f"eval suite {suite}: agent inputs are text")
    if not is_template(value):
        return value
    try:
        return compiled(value).render(vars=variables)
    except TemplateError as exc:
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

"""Terminal rendering of plans, applies and applied resources."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from afctl.context import ApplyOutcome, Description
    from afctl.state.diff import FieldChange
    from afctl.state.plan import Change, Plan
    from afctl.state.store import AppliedResource, Revision

_SIGNS = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red")}
_OPS = {"add": ("+", "green"), "replace": ("~", "yellow"), "remove": ("-", "red")}
_VALUE_WIDTH = 70


def _dotted(pointer: str) -> str:
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else ("." if out else "") + part
    return out


def short_value(value: Any) -> str:
    """A value on one line, cut short; multi-line text is summarised."""
    if isinstance(value, str) and "\n" in value.rstrip("\n"):
        return f"(text, {len(value.splitlines())} lines)"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _VALUE_WIDTH else text[: _VALUE_WIDTH - 1] + "…"


def display_path(path: Path | str | None) -> str:
    if path is None:
        return "(none)"
    if isinstance(path, str) and path.startswith(("http://", "https://")):
        return path  # a remote workspace: the server's URL
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("../..") else relative


def plan_header(plan: Plan, workspace: Path | None) -> str:
    return (
        f"Environment: {plan.env}   Workspace: {display_path(workspace)}   "
        f"State serial: {plan.state_serial}"
    )


def _field_line(change: FieldChange) -> tuple[str, str, str]:
    sign, colour = _OPS[change.op]
    path = _dotted(change.path)
    if change.op == "add":
        return sign, colour, f"{path}: {short_value(change.after)}"
    if change.op == "remove":
        return sign, colour, f"{path}: {short_value(change.before)}"
    return sign, colour, f"{path}: {short_value(change.before)} → {short_value(change.after)}"


def _change_lines(change: Change) -> list[tuple[str, str]]:
    """(style, text) lines describing one change."""
    sign, colour = _SIGNS[change.action]
    where = ""
    if change.source_file and change.action != "delete":
        where = f"{change.source_file}:{change.source_line}" if change.source_line else ""
    title = f"  {sign} {change.ref}"
    lines = [(f"bold {colour}", f"{title:<42} {where}".rstrip())]
    if change.reason:
        lines.append(("dim", f"      ({change.reason})"))
    for field in change.fields:
        op_sign, op_colour, text = _field_line(field)
        lines.append((op_colour, f"      {op_sign} {text}"))
    if change.previous_owner is not None and change.action == "update":
        lines.append(("dim", f"      owner: {change.previous_owner} → {change.owner}"))
    return lines


def render_plan(out: Console, plan: Plan, workspace: Path | None) -> None:
    from rich.text import Text

    out.print(Text(plan_header(plan, workspace), style="dim"))
    out.print()
    if not plan.has_changes:
        out.print(f"No changes. {plan.unchanged} resource(s) up to date.", markup=False)
    else:
        for change in plan.changes:
            for style, text in _change_lines(change):
                out.print(Text(text, style=style))
        out.print()
        out.print(Text(plan.summary, style="bold"))
    if plan.notes:
        out.print()
        for note in plan.notes:
            out.print(Text(note, style="yellow" if "needs trust" in note else ""))


def render_outcome(out: Console, outcome: ApplyOutcome) -> None:
    from rich.text import Text

    record = outcome.record
    if record is not None:
        out.print(
            Text("Apply complete: ", style="bold green")
            + Text(
                f"{record.creates} created, {record.updates} updated, {record.deletes} deleted. "
                f"Environment {record.env}, state serial {record.serial_before} → "
                f"{record.serial_after}, apply {record.id}."
            )
        )
    for build in outcome.knowledge:
        if build.report is None:
            out.print(Text(f"knowledge/{build.pack}: not indexed: {build.error}", style="yellow"))
        elif build.report.indexed or build.report.removed:
            report = build.report
            out.print(
                f"knowledge/{build.pack}: indexed {report.indexed} changed files "
                f"({report.chunks} chunks in all)",
                markup=False,
                highlight=False,
            )


def age(timestamp: str, now: datetime.datetime | None = None) -> str:
    """`5s`, `3m`, `2h`, `4d` since an ISO timestamp."""
    moment = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    seconds = int(((now or datetime.datetime.now(datetime.UTC)) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def resource_rows(resources: Sequence[AppliedResource], wide: bool) -> list[list[str]]:
    header = ["KIND", "NAME", "REVISION", "AGE", "SOURCE"]
    if wide:
        header += ["LABELS", "PROTECTED", "HASH", "APPLIED BY"]
    rows = [header]
    for r in resources:
        row = [r.kind, r.name, str(r.revision), age(r.applied_at), r.source_file or ""]
        if wide:
            labels = ",".join(f"{k}={v}" for k, v in sorted(r.labels.items()))
            row += [labels, "yes" if r.protect else "no", r.hash[:12], r.applied_by]
        rows.append(row)
    return rows


def print_columns(out: Console, rows: list[list[str]]) -> None:
    """Plain aligned columns, like kubectl: easy to read and to grep."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        line = "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        out.print(line.rstrip(), markup=False, highlight=False)


def revision_rows(revisions: Sequence[Revision]) -> list[list[str]]:
    rows = [["REVISION", "ACTION", "HASH", "APPLIED", "BY", "APPLY", "SOURCE"]]
    for r in revisions:
        rows.append(
            [
                str(r.revision),
                r.action,
                r.hash[:12],
                r.applied_at,
                r.applied_by,
                r.apply_id,
                r.source_file or "",
            ]
        )
    return rows


def render_description(out: Console, description: Description) -> None:
    from afctl.manifests.dump import dump_yaml

    r = description.resource
    labels = ", ".join(f"{k}={v}" for k, v in sorted(r.labels.items())) or "(none)"
    fields = [
        ("Name", r.name),
        ("Kind", r.kind),
        ("Environment", r.env),
        ("Labels", labels),
        ("Revision", f"{r.revision}   (hash {r.hash[:12]})"),
        ("Protected", "yes" if r.protect else "no"),
        ("Source", f"{r.source_file or '(none)'}   (source set {r.source_set or '(none)'})"),
        ("Applied", f"{r.applied_at} by {r.applied_by}   (apply {r.apply_id})"),
    ]
    if description.last_apply is not None:
        fields.append(("Apply command", description.last_apply.command))
    for label, value in fields:
        out.print(f"{label + ':':<15}{value}", markup=False, highlight=False)
    out.print("Manifest:", markup=False)
    for line in dump_yaml(r.document).splitlines():
        out.print("  " + line, markup=False, highlight=False)
    out.print("History:", markup=False)
    rows = [row[:5] for row in revision_rows(description.revisions)]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        line = "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        out.print("  " + line.rstrip(), markup=False, highlight=False)

"""Terminal rendering of runs: the one-line summary, listings, and transcripts."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from afctl.promptlog.store import EventRecord, RunRecord
    from afctl.runtime.agent import RunResult
    from afctl.runtime.workflow import WorkflowResult

_WIDTH = 400


def money(value: float | None) -> str:
    from afctl.pricing import usd

    return "cost unknown" if value is None else usd(value)


def counted(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def run_summary(result: RunResult) -> str:
    parts = [
        f"run {result.run_id} {result.status}",
        counted(result.turns, "turn"),
        counted(result.tool_calls, "tool call"),
        f"{result.usage.total} tokens" if result.usage.known else "tokens unknown",
        money(result.cost_usd),
        f"{result.latency_ms / 1000:.2f} s",
    ]
    line = " · ".join(parts)
    if result.error:
        line += f"\nerror: {result.error}"
    return line


def workflow_report(result: WorkflowResult, output: str) -> int:
    """Print a workflow run's outputs (or its JSON) and its summary; the exit code."""
    import click

    from afctl.errors import EXIT_ERROR, EXIT_OK

    if output == "json":
        from afctl.cli.render import print_json

        print_json(result.to_dict())
    else:
        for name, value in (result.outputs or {}).items():
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            click.echo(f"{name}: {shown}")
    marks = {"succeeded": "ok", "failed": "FAILED", "skipped": "skipped"}
    steps = ", ".join(f"{k} {marks.get(s.status, s.status)}" for k, s in result.steps.items())
    line = (
        f"workflow run {result.run_id} {result.status} · {result.tokens} tokens · "
        f"{money(result.cost_usd)} · {result.latency_ms / 1000:.2f} s\nsteps: {steps}"
    )
    if result.resumed:
        line += f"\nresumed after: {', '.join(result.resumed)}"
    if result.error:
        line += f"\nerror: {result.error}"
    click.echo(line, err=True)
    return EXIT_OK if result.ok else EXIT_ERROR


def run_rows(runs: Iterable[RunRecord]) -> list[list[str]]:
    """The runs as a table; a WORKER column when `afctl worker`s ran any of them."""
    runs = list(runs)
    workers = any(r.worker for r in runs)
    rows = [["RUN", "TARGET", "STATUS", "INPUT", "MODEL", "STARTED", "LATENCY", "TOKENS", "COST",
             *(["WORKER"] if workers else [])]]  # fmt: skip
    for r in runs:
        known = r.input_tokens is not None
        tokens = str((r.input_tokens or 0) + (r.output_tokens or 0)) if known else "-"
        latency = f"{(r.latency_ms or 0) / 1000:.2f}s" if r.latency_ms is not None else "-"
        cost = "-" if r.cost_usd is None else money(r.cost_usd)
        given = " ".join((r.input or "").split())
        rows.append([r.id, r.target, r.status, _short(given, 30) or "-", r.model or "",
                     r.started_at, latency, tokens, cost,
                     *([r.worker or "-"] if workers else [])])  # fmt: skip
    return rows


def _short(value: Any, width: int = _WIDTH) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "⏎ ") if len(text) > 120 else text
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_message(out: Console, message: dict[str, Any]) -> None:
    from rich.text import Text

    system = message["role"] == "system"
    out.print(
        Text(f"{message['role']:<8}", style="dim" if system else "bold cyan")
        + Text(_short(message.get("content") or ""), style="dim" if system else "")
    )


def _print_earlier(out: Console, message: dict[str, Any]) -> None:
    """An answer or tool result of an earlier run of the session, as the model was sent it."""
    from rich.text import Text

    if message["role"] == "tool":
        out.print(Text(f"  ← {_short(message.get('content') or '', 300)}", style="dim"))
        return
    if message.get("content"):
        out.print(Text("agent   ", style="green") + Text(_short(message["content"]), style="dim"))
    for call in message.get("tool_calls") or []:
        out.print(Text(f"  → {call['name']}({_short(call.get('arguments') or {}, 200)})",
                       style="dim"))  # fmt: skip


def render_transcript(
    out: Console, run: RunRecord, payload: dict[str, Any], events: Iterable[EventRecord]
) -> None:
    from rich.text import Text

    out.print(Text(f"run {run.id}", style="bold") + Text(f"  {run.target}  ({run.status})"))
    out.print(
        f"model {run.model or '-'} · revision {(run.revision_hash or '')[:12]} · env {run.env} · "
        f"started {run.started_at}"
        + (f" · session {run.session_id}" if run.session_id else "")
        + (f" · worker {run.worker}" if run.worker else ""),
        markup=False,
        highlight=False,
    )
    out.print()
    if run.kind == "workflow":
        inputs = (payload.get("vars") or {}).get("inputs")
        out.print(Text("inputs  ", style="bold cyan") + Text(_short(inputs or {})))
    shown = 0  # messages of the conversation already printed
    for event in events:
        if event.type == "model_call":
            shown = _render_model_call(out, event, shown)
        else:
            _render_event(out, event)
    _render_totals(out, run, payload)


def _render_model_call(out: Console, event: EventRecord, shown: int) -> int:
    """The messages of a model call not printed yet, its answer and its figures; returns how
    many messages of the conversation are printed now."""
    from rich.text import Text

    data = event.payload
    messages = data.get("request", {}).get("messages", [])
    for message in messages[shown:]:
        if message["role"] in ("system", "user"):
            _print_message(out, message)
        else:  # earlier turns of the session the run continues
            _print_earlier(out, message)
    message = data.get("response", {}).get("message", {})
    stats = (
        f"  [{event.model} · turn {event.turn} · {event.latency_ms or 0:.0f} ms · "
        f"{event.input_tokens or 0}→{event.output_tokens or 0} tokens · "
        f"{money(event.cost_usd)} · {event.status}]"
    )
    if message.get("content"):
        out.print(Text("agent   ", style="bold green") + Text(_short(message["content"])))
    for call in message.get("tool_calls") or []:
        out.print(
            Text("  → ", style="magenta")
            + Text(f"{call['name']}({_short(call.get('arguments') or {}, 200)})")
        )
    out.print(Text(stats, style="dim"))
    return len(messages) + 1  # and the answer, printed above


def _render_event(out: Console, event: EventRecord) -> None:
    """One event other than a model call, as a line."""
    from rich.text import Text

    data = event.payload
    if event.type == "tool_call":
        style = "red" if event.status == "error" else "magenta"
        out.print(
            Text("  ← ", style=style)
            + Text(f"{event.tool}: {_short(data.get('result', ''), 300)}")
            + Text(f"  [{event.latency_ms or 0:.0f} ms]", style="dim")
        )
    elif event.type == "guardrail":
        tripped = [d for d in data.get("decisions", []) if d.get("tripped")]
        detail = "; ".join(f"{d['name']} ({d['action']}): {d.get('reason')}" for d in tripped)
        style = "bold red" if data.get("status") == "blocked" else "yellow"
        out.print(
            Text(f"guard   {data.get('stage')} {data.get('status')}", style=style)
            + Text(f"  {_short(detail, 300)}" if detail else "")
        )
    elif event.type == "retrieval":
        sources = ", ".join(hit["source"] for hit in data.get("hits", [])) or "nothing"
        out.print(
            Text("  ⌕ ", style="magenta") + Text(f"{data.get('pack')}: {sources}", style="dim")
        )
    elif event.type == "handoff":
        out.print(
            Text("handoff ", style="bold yellow") + Text(f"{data.get('from')} → {data.get('to')}")
        )
    elif event.type == "step":
        style = {"succeeded": "green", "failed": "bold red"}.get(str(event.status), "dim")
        detail = data.get("reason") or data.get("error") or _short(data.get("output"), 200)
        children = ", ".join(data.get("runs") or []) or "-"
        out.print(
            Text(f"step    {data.get('id')} {event.status}", style=style)
            + Text(f"  {detail}")
            + Text(f"  [runs {children}]", style="dim")
        )
    elif event.type in ("retry", "fallback", "model_error", "output_invalid", "error"):
        out.print(
            Text(f"{event.type:<8}", style="yellow" if event.type != "error" else "bold red")
            + Text(_short(data))
        )


def _render_totals(out: Console, run: RunRecord, payload: dict[str, Any]) -> None:
    """How the run ended: a workflow's outputs and its steps' spend, or an agent run's
    turns, tool calls, tokens and cost."""
    from rich.text import Text

    details = payload.get("details") or {}
    if run.kind == "workflow" and payload.get("output"):
        out.print(Text("outputs ", style="bold green") + Text(_short(payload["output"])))
    out.print()
    if run.kind == "workflow":
        out.print(
            f"{run.status} · {details.get('total_tokens', 0)} tokens · "
            f"{money(details.get('total_cost_usd'))} (its steps') · "
            f"{(run.latency_ms or 0) / 1000:.2f} s",
            markup=False,
            highlight=False,
        )
        if run.error:
            out.print(Text(f"error: {run.error}", style="red"))
        return
    out.print(
        f"{run.status} · {counted(run.turns or 0, 'turn')} · "
        f"{counted(run.tool_calls or 0, 'tool call')} · "
        f"{(run.input_tokens or 0) + (run.output_tokens or 0)} tokens · {money(run.cost_usd)} · "
        f"{(run.latency_ms or 0) / 1000:.2f} s",
        markup=False,
        highlight=False,
    )
    if run.error:
        out.print(Text(f"error ({run.error_type}): {run.error}", style="red"))

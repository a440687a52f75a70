"""How replays and run diffs look as text (`afctl replay`, `afctl diff-runs`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from afctl.replay.diff import RunDiff
    from afctl.replay.offline import ReplayReport


def show_report(report: ReplayReport) -> None:
    """Reproduced, or the first step that diverged with both sides."""
    if report.divergence is None:
        click.echo(
            f"run {report.run_id}: reproduced ({report.steps} steps, "
            f"engine {report.engine_ms:.1f} ms)"
        )
        return
    d = report.divergence
    click.echo(f"run {report.run_id}: diverged at step {d.step} (turn {d.turn}): {d.what}")
    click.echo(f"  recorded: {_shown(d.expected)}")
    click.echo(f"  engine:   {_shown(d.actual)}")


def show_diff(diff: RunDiff) -> None:
    """A step-aligned comparison of two runs, as text."""
    click.echo(f"runs {diff.a} → {diff.b}")
    if diff.inputs is not None:
        given_a, given_b = diff.inputs["a"], diff.inputs["b"]
        for key in ("input", "vars"):
            if given_a[key] != given_b[key]:
                click.echo(f"  {key}: {_shown(given_a[key])} → {_shown(given_b[key])}")
    if diff.params is not None:
        firsts = [p[0] if p else {} for p in (diff.params["a"], diff.params["b"])]
        click.echo(f"  params: {_shown(firsts[0])} → {_shown(firsts[1])}")
    for change in diff.step_changes:
        click.echo(f"  step {change['step']}: {_shown(change['a'])} → {_shown(change['b'])}")
    if diff.same_output:
        click.echo("  output: the same")
    else:
        click.echo("  output: " + _shown(" ".join(diff.output_diff)))
    if diff.tools_a != diff.tools_b:
        click.echo(f"  tool calls: {diff.tools_a} → {diff.tools_b}")
    for change in diff.argument_changes:
        click.echo(f"  call {change['step']} {change['tool']}: {_shown(change['a'])} → "
                   f"{_shown(change['b'])}")  # fmt: skip
    if diff.handoffs_a != diff.handoffs_b:
        click.echo(f"  handoffs: {diff.handoffs_a} → {diff.handoffs_b}")
    if diff.guardrails_a != diff.guardrails_b:
        click.echo(f"  guardrails: {diff.guardrails_a} → {diff.guardrails_b}")
    for name, delta in diff.deltas.items():
        if delta.get("a") != delta.get("b"):
            change = delta.get("change")
            shown = f" ({change:+g})" if isinstance(change, (int, float)) else ""
            click.echo(f"  {name}: {delta.get('a')} → {delta.get('b')}{shown}")
    if diff.identical:
        click.echo("  the same run: input, parameters, trajectory and output")
    elif diff.identical_trajectory:
        click.echo("  the same trajectory (the differences above aside)")


def _shown(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "⏎ ")
    return text if len(text) <= 300 else text[:299] + "…"

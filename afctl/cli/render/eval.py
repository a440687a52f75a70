"""How eval results, load tests and tuning reports look on a terminal (`afctl eval`,
`afctl eval --stress`, `afctl tune`)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from afctl.cli.render import console
from afctl.pricing import usd

if TYPE_CHECKING:
    from afctl.eval.runner import EvalResult


def render_results(results: list[EvalResult]) -> None:
    """Each suite's cases as a table, then its variants, repeats, baseline comparison, cache
    and verdict."""
    from afctl.cli.render.state import print_columns

    for result in results:
        several = len(result.variant_rates()) > 1 or result.repeat > 1
        rows = [["CASE", *(["VARIANT", "REPEAT"] if several else []), "RESULT", "SCORE",
                 "LATENCY", "COST", "WHY"]]  # fmt: skip
        for case in result.cases:
            why = "; ".join(
                f"{a.name}: {a.reason}" for a in case.assertions if not a.passed and a.reason
            ) or (case.error or "")
            rows.append(
                [case.case_id, *([case.variant, str(case.repeat + 1)] if several else []),
                 {"pass": "pass", "fail": "FAIL", "error": "ERROR"}[case.outcome],
                 f"{case.score:.2f}",
                 f"{case.latency_ms / 1000:.2f}s",
                 "-" if case.cost_usd is None else usd(case.cost_usd), why[:120]]
            )  # fmt: skip
        print_columns(console(), rows)
        if several:
            for variant, rate in result.variant_rates().items():
                click.echo(f"  variant {variant}: {rate:.0%} passed")
            for stat in result.case_stats():
                low, high = stat["wilson_95"]
                flaky = "  FLAKY" if stat["flaky"] else ""
                if result.repeat > 1:
                    click.echo(
                        f"  {stat['case']} [{stat['variant']}]: {stat['passes']}/"
                        f"{stat['runs']} (95% {low:.2f}-{high:.2f}){flaky}"
                    )
        if result.comparison is not None:
            comparison = result.comparison
            for kind in ("regressions", "fixes"):
                found = comparison[kind]
                listed = ", ".join(f"{e['case']} [{e['variant']}]" for e in found)
                click.echo(f"  {kind} against {comparison['baseline']}: {listed or 'none'}")
        if result.cache is not None:
            click.echo(f"  cache: {result.cache['hits']} hits, {result.cache['misses']} misses")
            for miss in result.cache.get("explained", []):
                inputs = miss["inputs"]
                click.echo(
                    f"    miss {miss['case']} [{miss['variant']}] repeat {miss['repeat'] + 1} "
                    f"turn {miss['turn']}: {miss['why']}\n      key: {inputs['provider']}/"
                    f"{inputs['model']} params={json.dumps(inputs['params'])} "
                    f"tools={','.join(inputs['tool_names']) or '-'} "
                    f"messages={inputs['messages'][:12]} tools_schema={inputs['tools'][:12]}"
                )
        passed = sum(c.passed for c in result.cases)
        errors = (
            f" · {result.errors} could not run ({result.error_rate:.0%}, allowed "
            f"{result.max_error_rate:.0%})"
            if result.errors
            else ""
        )
        click.echo(
            f"{result.verdict.upper()} suite {result.suite}: {passed}/{len(result.ran)} "
            f"cases passed ({result.pass_rate:.0%}, required "
            f"{result.pass_rate_required:.0%}){errors} · eval {result.eval_id} · "
            f"{result.seconds:.2f} s\n"
        )


def render_stress(data: list[dict[str, Any]]) -> None:
    """Each suite's load test: a row per step of the ramp, then where it stopped scaling."""
    from afctl.cli.render.state import print_columns

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.0f}"

    for report in data:
        rows = [["CONCURRENCY", "RUNS", "RUNS/S", "P50_MS", "P95_MS", "P99_MS", "TTFT_P50",
                 "TTFT_P95", "ERRORS", "TIMEOUTS"]]  # fmt: skip
        for step in report["steps"]:
            latency, ttft = step["latency_ms"], step["ttft_ms"]
            rows.append([str(step["concurrency"]), str(step["runs"]),
                         f"{step['throughput_per_s']:.1f}", ms(latency["p50"]), ms(latency["p95"]),
                         ms(latency["p99"]), ms(ttft["p50"]), ms(ttft["p95"]),
                         f"{step['error_rate']:.1%}", f"{step['timeout_rate']:.1%}"])  # fmt: skip
        print_columns(console(), rows)
        knee = report["knee_concurrency"]
        where = (
            f"throughput stops growing past concurrency {knee}"
            if knee is not None
            else "throughput still grew at the last step"
        )
        click.echo(f"suite {report['suite']} (agent {report['agent']}): {where} · stress "
                   f"{report['stress_id']}\n")  # fmt: skip


def render_tuning(data: list[dict[str, Any]]) -> None:
    """Each suite's candidates by rank, then the winner as a patch of the agent's manifest."""
    from ruamel.yaml import YAML

    from afctl.cli.render.state import print_columns
    from afctl.eval.tune import as_block_text

    for report in data:
        rows = [["RANK", "CANDIDATE", "CASES", "PASS_RATE", "COST", "P50_MS", "EVAL"]]
        for rank, entry in enumerate(report["ranking"], start=1):
            cost = "-" if entry["cost_usd"] is None else usd(entry["cost_usd"])
            rows.append([str(rank), entry["candidate"], str(entry["cases"]),
                         f"{entry['pass_rate']:.0%}", cost, f"{entry['latency_p50_ms']:.0f}",
                         entry["eval_id"]])  # fmt: skip
        print_columns(console(), rows)
        if report["skipped"]:
            click.echo(f"  not tried (budget spent): {', '.join(report['skipped'])}")
        if report["winner"] is None:
            click.echo(f"suite {report['suite']}: no candidate was tried\n")
            continue
        where = report["agent_file"] or f"agent/{report['agent']}"
        verb = "written to" if report["written"] else "patch for"
        click.echo(f"\nwinner: {report['winner']} ({report['strategy']}) · {verb} {where}:")
        patch = {"kind": "Agent", "metadata": {"name": report["agent"]},
                 **as_block_text(report["patch"])}  # fmt: skip
        yaml = YAML()
        yaml.default_flow_style = False
        import io

        text = io.StringIO()
        yaml.dump(patch, text)
        click.echo(text.getvalue())

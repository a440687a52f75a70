"""`afctl eval`: run eval suites against their agents; exit 5 when a suite misses its
thresholds."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from afctl.cli.params import output_option, state_options
from afctl.errors import EXIT_CHECKS_FAILED, EXIT_ERROR, EXIT_OK, UsageError
from afctl.pricing import usd

if TYPE_CHECKING:
    from afctl.context import Context


@click.command("eval")
@click.argument("paths", nargs=-1, metavar="PATH...")
@click.option(
    "-f", "--filename", "files", multiple=True, metavar="PATH",
    help="A suite file or folder (as every other command takes them; the same as PATH).",
)  # fmt: skip
@click.option("--json", "json_file", metavar="FILE", help="Also write the results as JSON.")
@click.option(
    "--junit", "junit_file", metavar="FILE", help="Also write JUnit XML (one testcase per case)."
)
@click.option(
    "--html", "html_file", metavar="FILE", help="Also write a self-contained HTML report."
)
@click.option("--filter", "case_filter", metavar="REGEX", help="Only cases whose id matches.")
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N cases of each suite.")
@click.option("--only-failed", metavar="EVAL_ID|last", help="Only the cases that failed there.")
@click.option("--baseline", metavar="EVAL_ID|last", help="List regressions and fixes against it.")
@click.option("--fail-on-regression", is_flag=True, help="Exit 5 when the baseline passed a case.")
@click.option("--no-cache", is_flag=True, help="Call the models even for answers in the cache.")
@click.option("--explain-cache", is_flag=True, help="List each cache miss and what differs.")
@click.option("--stress", is_flag=True, help="Load-test the agent at rising concurrency instead.")
@click.option("--ramp", default="1,4,16,64", show_default=True, help="Concurrencies of --stress.")
@click.option(
    "--duration", default="30s", show_default=True, help="How long each --stress step runs."
)
@output_option("text", "json")
@state_options
def eval_command(
    paths: tuple[str, ...],
    files: tuple[str, ...],
    json_file: str | None,
    junit_file: str | None,
    html_file: str | None,
    case_filter: str | None,
    limit: int | None,
    only_failed: str | None,
    baseline: str | None,
    fail_on_regression: bool,
    no_cache: bool,
    explain_cache: bool,
    stress: bool,
    ramp: str,
    duration: str,
    output: str,
    context: Context,
) -> int:
    """Run eval suites against their agents (exit 5 below thresholds).

    PATH holds EvalSuite manifests (files or folders); the agents come from the same files,
    else from the applied state. Every case is a run in the prompt log.
    """

    paths = (*paths, *files)
    if not paths:
        raise UsageError("give the suites: afctl eval PATH (or -f PATH)", hint="afctl eval evals/")
    if stress:
        return _stress(list(paths), ramp, duration, output, context)
    if fail_on_regression and baseline is None:
        baseline = "last"
    from afctl.cli.render import check_report_paths, write_report

    check_report_paths({"--json": json_file, "--junit": junit_file, "--html": html_file})
    results = context.evaluate(
        list(paths),
        case_filter=case_filter,
        limit=limit,
        only_failed=only_failed,
        baseline=baseline,
        cache=not no_cache,
        explain_cache=explain_cache,
    )
    data = [r.to_dict() for r in results]
    if json_file:
        write_report("--json", json_file, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    if junit_file:
        from afctl.eval.junit import junit_xml

        write_report("--junit", junit_file, junit_xml(results))
    if html_file:
        from afctl.eval.html_report import render_html

        write_report("--html", html_file, render_html(data))
    if output == "json":
        from afctl.cli.render import print_json

        print_json(data)
    else:
        from afctl.cli.render import console
        from afctl.cli.render_state import print_columns

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
    if any(r.errored for r in results):  # an outage is not a regression: exit 1, not 5
        return EXIT_ERROR
    regressed = fail_on_regression and any(r.regressions for r in results)
    return EXIT_OK if all(r.passed for r in results) and not regressed else EXIT_CHECKS_FAILED


def _stress(paths: list[str], ramp: str, duration: str, output: str, context: Context) -> int:
    from afctl.durations import seconds_of
    from afctl.eval.stress import parse_ramp

    try:
        levels = parse_ramp(ramp)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ramp") from None
    seconds = seconds_of(duration)
    if not seconds:
        raise click.BadParameter("write a duration like 30s or 2m", param_hint="--duration")

    reports = context.stress(paths, levels, seconds)
    data = [r.to_dict() for r in reports]
    if output == "json":
        from afctl.cli.render import print_json

        print_json(data)
        return EXIT_OK
    from afctl.cli.render import console
    from afctl.cli.render_state import print_columns

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
    return EXIT_OK

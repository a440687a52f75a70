"""`afctl eval`: run eval suites against their agents; exit 5 when a suite misses its
thresholds."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from afctl.cli.params import Duration, Ramp, executor_option, output_option, remote_state_options
from afctl.errors import EXIT_CHECKS_FAILED, EXIT_ERROR, EXIT_OK, UsageError

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
@executor_option("cases")
@click.option("--stress", is_flag=True, help="Load-test the agent at rising concurrency instead.")
@click.option(
    "--ramp", type=Ramp(), default="1,4,16,64", show_default=True,
    help="Concurrencies of --stress.",
)  # fmt: skip
@click.option(
    "--duration", type=Duration(), default="30s", show_default=True,
    help="How long each --stress step runs.",
)  # fmt: skip
@output_option("text", "json")
@remote_state_options
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
    executor: str | None,
    stress: bool,
    ramp: list[int],
    duration: float,
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
        executor=executor,
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
        from afctl.cli.render.eval import render_results

        render_results(results)
    if any(r.errored for r in results):  # an outage is not a regression: exit 1, not 5
        return EXIT_ERROR
    regressed = fail_on_regression and any(r.regressions for r in results)
    return EXIT_OK if all(r.passed for r in results) and not regressed else EXIT_CHECKS_FAILED


def _stress(
    paths: list[str], ramp: list[int], duration: float, output: str, context: Context
) -> int:
    if not duration:
        raise click.BadParameter("write a duration like 30s or 2m", param_hint="--duration")
    reports = context.stress(paths, ramp, duration)
    data = [r.to_dict() for r in reports]
    if output == "json":
        from afctl.cli.render import print_json

        print_json(data)
        return EXIT_OK
    from afctl.cli.render.eval import render_stress

    render_stress(data)
    return EXIT_OK

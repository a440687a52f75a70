"""Eval reports: JUnit XML that validates against the schema CI tools read, and the HTML
report, rendered in headless Chromium."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from hypothesis import given, settings
from hypothesis import strategies as st

from afctl.eval.assertions import Checked
from afctl.eval.html_report import render_html
from afctl.eval.junit import junit_xml
from afctl.eval.runner import CaseResult, EvalResult
from afctl.testing import invoke
from tests.eval.test_eval import repo_with, suite

SCHEMA = xmlschema.XMLSchema(Path(__file__).with_name("junit.xsd"))

CASES = (
    "    - {id: ok, input: 'hi {{ vars.who }}', assert: [{type: contains, value: echo}]}\n"
    "    - {id: bad, input: '<script>alert(1)</script> \\e[31m red', "
    "assert: [{type: contains, value: nope, name: wants-nope}]}\n"
)
MATRIX = "  matrix: {model: [script, local/echo], vars: {who: [Ann]}}\n  repeat: 2\n"


def evaluated(tmp_path: Path, *flags: str) -> Path:
    repo = repo_with(tmp_path, suite(CASES, MATRIX))
    result = invoke(["eval", ".", *flags], cwd=repo)
    assert result.exit_code == 5, result.output  # one case fails in every variant
    return repo


def test_junit_validates_with_a_testcase_per_case_variant_and_repeat(tmp_path):
    repo = evaluated(tmp_path, "--junit", "junit.xml")
    SCHEMA.validate(repo / "junit.xml")  # raises with the first violation
    names = [c.get("name") for c in ET.parse(repo / "junit.xml").iter("testcase")]
    assert len(names) == len(set(names)) == 2 * 2 * 2
    assert "bad [model=local/echo,who=Ann] #2" in names
    assert "\x1b" not in (repo / "junit.xml").read_text()  # replaced: XML cannot carry it


def result_with(output: str, case_id: str = "c") -> EvalResult:
    checked = [Checked("contains", "contains", False, 1.0, f"not in {output!r}")]
    case = CaseResult(case_id, "01RUN", False, 0.0, "succeeded", output, 12.5, None, checked)
    return EvalResult("01EVAL", "suite", "agent", [case], 1.0, 0.5)


@settings(max_examples=60, deadline=None)
@given(st.text(), st.text(min_size=1))
def test_junit_of_any_output_and_case_id_validates(output, case_id):
    SCHEMA.validate(junit_xml([result_with(output, case_id)]))


def test_the_html_report_is_self_contained_and_escapes_what_models_say(tmp_path):
    repo = evaluated(tmp_path, "--html", "report.html", "--json", "eval.json")
    page = (repo / "report.html").read_text()
    # nothing is fetched: no external scripts, styles, images or fonts
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    data = json.loads((repo / "eval.json").read_text())[0]
    for case in data["cases"]:  # every case is there, linked to its run by id
        assert f'id="run-{case["run_id"]}"' in page and f'href="#run-{case["run_id"]}"' in page
    for variant in data["variants"]:  # whole, never cut (two would look alike)
        assert f'<span class="bar-label">{variant}</span>' in page
    assert page.count("<svg") == 1 and page.count('class="bars"') == 2  # latency; pass, cost
    failed = next(c for c in data["cases"] if not c["passed"])  # why, in the row itself
    reason = next(a["reason"] for a in failed["assertions"] if not a["passed"])
    row = next(
        r for r in page.split("<tr ") if r.startswith('class="case"') and failed["run_id"] in r
    )
    assert '<td class="why">' in row and html.escape(reason) in row
    assert "wants-nope" in page and "FAIL" in page


def test_a_report_of_stored_results_renders_the_same(tmp_path):
    result = result_with("plain")
    assert render_html([result.to_dict()]) == render_html([result.to_dict()])
    assert "01RUN" in render_html([result.to_dict()])


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it with apt-get)")
    return found


def test_the_html_report_renders_in_headless_chromium_without_console_errors(tmp_path):
    browser = chromium()
    repo = evaluated(tmp_path, "--html", "report.html")
    shown = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom",
         (repo / "report.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr[-2000:]
    console = [line for line in shown.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []  # no errors, no uncaught exceptions, no warnings from the page
    # the page's script ran to the end: it marks the body and counts the cases shown
    assert '<body data-ready="true">' in shown.stdout
    assert "8 of 8 shown" in shown.stdout

"""Eval results as JUnit XML: one <testsuite> per suite, one <testcase> per case and variant
(and repeat), failures with the assertions that failed. Loads in the CI tools that read JUnit
(GitHub, GitLab, Jenkins, Azure DevOps); `tests/eval/junit.xsd` states what they accept and
the tests validate against it.

Model output can hold characters XML 1.0 cannot carry (escape sequences, NUL); they are
replaced with U+FFFD so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _case_name(case: Any, repeats: int) -> str:
    name = case.case_id if case.variant == "default" else f"{case.case_id} [{case.variant}]"
    return f"{name} #{case.repeat + 1}" if repeats > 1 else name


def junit_xml(results: Sequence[Any]) -> str:
    root = ET.Element("testsuites", name="afctl eval")
    total = failures = errors = 0
    seconds = 0.0
    for result in results:
        suite = ET.SubElement(
            root,
            "testsuite",
            name=_text(result.suite),
            tests=str(len(result.cases)),
            failures=str(sum(c.outcome == "fail" for c in result.cases)),
            errors=str(sum(c.errored for c in result.cases)),
            skipped="0",
            time=f"{result.seconds:.3f}",
            timestamp=result.started_at.removesuffix("Z"),
        )
        properties = ET.SubElement(suite, "properties")
        facts = {
            "eval_id": result.eval_id,
            "agent": result.agent,
            "pass_rate": f"{result.pass_rate:.4f}",
            "pass_rate_required": f"{result.pass_rate_required:.4f}",
        }
        for name, value in facts.items():
            ET.SubElement(properties, "property", name=name, value=_text(value))
        for case in result.cases:
            element = ET.SubElement(
                suite,
                "testcase",
                classname=_text(f"{result.suite}.{result.agent}"),
                name=_text(_case_name(case, result.repeat)),
                time=f"{case.latency_ms / 1000:.3f}",
            )
            if case.errored:  # the run could not answer: an error, not a failed assertion
                error = ET.SubElement(element, "error", message=_text(
                    (case.error or f"status {case.status}")[:1000]), type="run")  # fmt: skip
                error.text = _text(f"run {case.run_id} ({case.status}): {case.error}")
            elif not case.passed:
                failed = [a for a in case.assertions if not a.passed]
                message = "; ".join(f"{a.name}: {a.reason}" for a in failed) or (
                    case.error or f"status {case.status}"
                )
                failure = ET.SubElement(
                    element, "failure", message=_text(message[:1000]), type="assertion"
                )
                failure.text = _text("\n".join(
                    [f"run {case.run_id} ({case.status}), score {case.score:.2f}",
                     *(f"- {a.name} ({a.type}): {a.reason}" for a in failed),
                     f"output: {case.output}"]
                ))  # fmt: skip
            output = ET.SubElement(element, "system-out")
            output.text = f"run {case.run_id}"
        total += len(result.cases)
        failures += sum(c.outcome == "fail" for c in result.cases)
        errors += sum(c.errored for c in result.cases)
        seconds += result.seconds
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", str(errors))
    root.set("time", f"{seconds:.3f}")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"

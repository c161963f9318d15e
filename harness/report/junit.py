"""junit.xml: one test case per gate per scenario, so any CI system shows which gate failed.

A gate skipped for lack of history is a `<skipped>` test case, never a pass: a CI page that
counts it green would claim a check that did not happen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree as ET

from harness.result import files as result_files
from harness.result import model as result_model


def render(result: result_model.Result | Mapping[str, Any]) -> str:
    result = result_files.as_result(result)
    plan = result.plan.name or "harness"
    suites = ET.Element("testsuites", name=f"harness {plan}")
    for s in result.scenarios:
        if s.not_applicable:
            # Not run on this target: a skipped case, neither a pass nor an error.
            suite = ET.SubElement(suites, "testsuite", name=s.name, tests="1", failures="0", errors="0",
                                  skipped="1")  # fmt: skip
            case = ET.SubElement(suite, "testcase", classname=f"{plan}.{s.name}", name="scenario applicable")
            ET.SubElement(case, "skipped", message=f"not applicable: {s.not_applicable}")
            continue
        suite = ET.SubElement(suites, "testsuite", name=f"{s.name}#{s.trial}")
        cases = 0
        failures = 0
        errors = 0
        skipped = 0
        if s.status not in ("completed", None) or s.metrics is None:
            case = ET.SubElement(suite, "testcase", classname=f"{plan}.{s.name}", name="scenario completed")
            unsteady = s.baseline_check is not None and not s.baseline_check.steady
            baseline = (
                f"baseline not steady, no fault injected: {s.baseline_check.reasons()}" if unsteady else None
            )
            problem = s.aborted_by or s.error or baseline or s.scoring_error or f"status {s.status}"
            ET.SubElement(case, "error", message=str(problem))
            cases += 1
            errors += 1
        for g in s.gates:
            case = ET.SubElement(suite, "testcase", classname=f"{plan}.{s.name}", name=g.expression)
            cases += 1
            if g.skipped:
                skipped += 1
                ET.SubElement(case, "skipped", message=str(g.reason or "skipped"))
            elif not g.passed:
                failures += 1
                detail = f"value {g.value}" + (f": {g.reason}" if g.reason else "")
                ET.SubElement(case, "failure", message=detail)
        suite.set("tests", str(cases))
        suite.set("failures", str(failures))
        suite.set("errors", str(errors))
        if skipped:
            suite.set("skipped", str(skipped))
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"

"""Findings: rules over a scenario's metrics, recovery phases, the plan and the target's facts,
each with its evidence, the change it recommends and, where the harness can estimate it, that
change's expected effect (docs/findings.md).

Pure: values in, `harness.result.Finding`s out. The engine stores them in result.json when it
scores a scenario (`for_scenario`) and a run (`for_run`); report.html and summary.md show those
result.json holds (`stored`), and `harness compare` and `harness findings` read them with
`of_result`, which works them out for results written before findings existed.
"""

from harness.findings import recovery, registry, run, traffic, validity
from harness.findings.listing import RULES, Listed, for_run, for_scenario, markdown_table, of_result, stored
from harness.findings.registry import Rule, Scope, Severity

__all__ = [
    "RULES",
    "Listed",
    "Rule",
    "Scope",
    "Severity",
    "for_run",
    "for_scenario",
    "markdown_table",
    "of_result",
    "recovery",
    "registry",
    "run",
    "stored",
    "traffic",
    "validity",
]

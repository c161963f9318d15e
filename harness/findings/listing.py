"""The registry of rules, and the findings of a scenario, a run and a whole result.json."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.findings import recovery, run, traffic, validity
from harness.findings.registry import SEVERITY_ORDER, Rule, RunInputs, ScenarioInputs, Scope, Severity
from harness.result import model as result_model

RULES: tuple[Rule, ...] = (
    *validity.RULES[:1],  # an abort first: everything after it is about a scenario cut short
    *traffic.RULES[-1:],  # data loss
    *recovery.RULES,
    *traffic.RULES[:-1],
    *validity.RULES[1:],
    *run.RULES,
)
"""Every rule, in the order docs/findings.md lists them. Ids are stable: compare keys on them."""


def _ordered(found: Iterable[result_model.Finding]) -> list[result_model.Finding]:
    """Most severe first; within a severity, the registry's order."""
    return sorted(found, key=lambda f: SEVERITY_ORDER[Severity(f.severity)])


def for_scenario(
    scenario: Mapping[str, Any], plan: Mapping[str, Any] | None, target: Mapping[str, Any] | None
) -> list[result_model.Finding]:
    """The findings of one scenario trial, from its result entry (a dict, so that keys the model
    does not name yet are read too), the resolved plan and the target's facts."""
    if scenario.get("status") == result_model.NOT_APPLICABLE:
        return []  # not run: nothing to find
    inputs = ScenarioInputs(scenario, plan or {}, target or {})
    return _ordered(f for r in RULES if r.scope is Scope.SCENARIO for f in r.findings(inputs))


def for_run(
    scenarios: Sequence[Mapping[str, Any]], plan: Mapping[str, Any] | None, target: Mapping[str, Any] | None
) -> list[result_model.Finding]:
    """The findings over a run as a whole: its trials per scenario, its target."""
    inputs = RunInputs(scenarios, plan or {}, target or {})
    return _ordered(f for r in RULES if r.scope is Scope.RUN for f in r.findings(inputs))


@dataclass(frozen=True)
class Listed:
    """A finding with the scenario trial it belongs to (trial None: a run-level finding)."""

    finding: result_model.Finding
    scenario: str | None = None
    trial: int | None = None

    @property
    def where(self) -> str:
        """`node-crash#2`, `node-crash` (every trial) or `run`."""
        if self.scenario is None:
            return "run"
        return self.scenario if self.trial is None else f"{self.scenario}#{self.trial}"


def stored(result: result_model.Result) -> list[Listed]:
    """The findings result.json holds, most severe first (none for a result written before them)."""
    listed = [Listed(f, s.name, s.trial) for s in result.scenarios for f in s.findings]
    listed += [Listed(f, f.scenario, None) for f in result.findings]
    return sorted(listed, key=lambda x: SEVERITY_ORDER[Severity(x.finding.severity)])


def of_result(result: result_model.Result, plan: Mapping[str, Any] | None = None) -> list[Listed]:
    """Every finding of a result, most severe first: those result.json holds, or, for a result
    written before findings existed, worked out from it and its plan now."""
    target = result.target.model_dump(mode="python")
    listed: list[Listed] = []
    for s in result.scenarios:
        if "findings" in s.model_fields_set:
            found = s.findings
        else:
            found = for_scenario(s.model_dump(mode="python", exclude_unset=True), plan, target)
        listed += [Listed(f, s.name, s.trial) for f in found]
    if "findings" in result.model_fields_set:
        overall = result.findings
    else:
        entries = [s.model_dump(mode="python", exclude_unset=True) for s in result.scenarios]
        overall = for_run(entries, plan, target)
    listed += [Listed(f, f.scenario, None) for f in overall]
    return sorted(listed, key=lambda x: SEVERITY_ORDER[Severity(x.finding.severity)])


def markdown_table() -> str:
    """docs/findings.md's table of rules, generated from the registry (a test keeps them in step)."""
    lines = [
        "| id | severity | scope | reads | what it finds, and why it matters |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in RULES:
        reads = ", ".join(f"`{x}`" for x in r.reads)
        lines.append(f"| `{r.id}` | {r.severity.value} | {r.scope.value} | {reads} | {r.why} |")
    return "\n".join(lines)

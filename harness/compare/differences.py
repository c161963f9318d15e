"""Findings that differ between the sides of a comparison (docs/findings.md).

Per scenario and finding id, the share of each side's trials in which the finding fired (run-level
findings: the share of its runs); a finding is listed when those shares differ. Findings come from
each run's result.json as it was scored (`harness.findings.of_result`; worked out for results written
before findings existed), not from the comparison's own scale: they say why a side behaved as it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from harness import findings

if TYPE_CHECKING:
    from harness.compare.runs import Side

_SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class FindingDifference:
    """One finding whose share of trials (or runs) is not the same on every side."""

    scenario: str | None
    """The scenario it is about; None: a finding about the run or its target."""
    id: str
    severity: str
    title: str
    """As the first side where it fired words it."""
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per side: trials (run-level: runs) with the finding, and trials (runs) in all."""
    unit: str = "trials"

    def share_text(self, label: str) -> str:
        """`3 of 5 trials`."""
        got, total = self.counts.get(label, (0, 0))
        return f"{got} of {total} {self.unit if total != 1 else self.unit[:-1]}"


def differing(sides: Sequence[Side], scenarios: Sequence[str]) -> tuple[FindingDifference, ...]:
    """The findings whose share differs between the sides, most severe first, in scenario order."""
    seen: dict[tuple[str | None, str], FindingDifference] = {}
    totals: dict[tuple[str, str | None], int] = {}
    hits: dict[tuple[str, str | None, str], int] = {}
    for side in sides:
        for run in side.runs:
            totals[(side.label, None)] = totals.get((side.label, None), 0) + 1
            for s in run.result.scenarios:
                if s.applicable and s.name in scenarios:
                    totals[(side.label, s.name)] = totals.get((side.label, s.name), 0) + 1
            fired: set[tuple[str | None, str]] = set()
            for x in findings.of_result(run.result, run.plan):
                scenario = x.scenario if x.trial is not None else None
                if scenario is not None and scenario not in scenarios:
                    continue
                key = (scenario, x.finding.id)
                seen.setdefault(
                    key, FindingDifference(scenario, x.finding.id, x.finding.severity, x.finding.title)
                )
                if x.trial is None:
                    fired.add(key)  # once per run, whatever scenarios it names
                else:
                    hits[(side.label, *key)] = hits.get((side.label, *key), 0) + 1
            for key in fired:
                hits[(side.label, *key)] = hits.get((side.label, *key), 0) + 1
    out = []
    for (scenario, rule), found in seen.items():
        counts = {side.label: (hits.get((side.label, scenario, rule), 0), totals.get((side.label, scenario), 0))
                  for side in sides}  # fmt: skip
        shares = {got / total if total else None for got, total in counts.values()}
        if len(shares) > 1:
            unit = "trials" if scenario is not None else "runs"
            out.append(FindingDifference(scenario, rule, found.severity, found.title, counts, unit))
    order = {name: i for i, name in enumerate(scenarios)}
    out.sort(
        key=lambda d: (_SEVERITY_ORDER.get(d.severity, 3), -1 if d.scenario is None else order[d.scenario])
    )
    return tuple(out)

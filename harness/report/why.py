"""Why a scenario trial did not pass, in words: for summary.md's "Why it failed" and the console.

A trial passes only when its experiment completed, its steady state held before and after the
fault, it was scored, and every gate passed (harness.engine.runner). A "passed: no" without its
reason sends the reader into journal.json; this module names the reason instead: each failed
gate with its value and threshold, each steady-state probe that did not meet its tolerance with
what it returned, the action that failed, the abort, the error. Pure: it takes the Result and the
journals (harness.store.runview reads them) and returns lines; renderers add the markup.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.plan import gates
from harness.report import inputs
from harness.result import model as result_model

MAX_VALUE_CHARS = 120
"""A probe's output or an exception is cut here: a reason is a line, the journal has the rest."""

_STATUS_WORDS = {
    "failed": "the experiment failed",
    "aborted": "the experiment was aborted",
    "interrupted": "the run was interrupted",
    "error": "the scenario could not run",
    "running": "the scenario did not finish",
}


@dataclass(frozen=True)
class Failure:
    """A trial that did not pass and why (at least one reason, always)."""

    scenario: str
    trial: int
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.scenario}#{self.trial}"


def failures(
    result: result_model.Result, journals: Mapping[tuple[str, int], inputs.Journal] | None = None
) -> list[Failure]:
    """Every applicable trial that did not pass, in the result's order, with its reasons.
    `journals` by (scenario, trial); a missing one leaves out the probes, never the trial."""
    journals = journals or {}
    return [
        Failure(s.name, s.trial, tuple(reasons(s, journals.get((s.name, s.trial)))))
        for s in result.scenarios
        if s.applicable and not s.passed
    ]


def reasons(scenario: result_model.Scenario, journal: inputs.Journal | None = None) -> list[str]:
    """Why this trial did not pass, one plain sentence each; a generic one when nothing explains it."""
    out: list[str] = []
    if scenario.status != "completed":
        out.append(f"status {scenario.status}: {_STATUS_WORDS.get(scenario.status, 'not completed')}")
    if scenario.aborted_by:
        out.append(f"aborted: {scenario.aborted_by}")
    if scenario.error:
        out.append(f"error: {_cut(scenario.error)}")
    if journal is not None:
        out += _failed_actions(journal)
    out += _steady_state(scenario, journal)
    if scenario.metrics is None and scenario.status == "completed":
        out.append(f"not scored: {_cut(scenario.scoring_error or 'no metrics')}")
    elif scenario.scoring_error:
        out.append(f"scoring: {_cut(scenario.scoring_error)}")
    out += [gate_reason(g) for g in scenario.gates if not g.passed]
    if not out:
        out.append("did not pass, and neither the result nor the journal says why (see result.json)")
    return out


def gate_reason(gate: result_model.GateOutcome) -> str:
    """`gate recovery_time_s < 10: value 12.3, threshold 10` and the gate's own reason, if any."""
    try:
        parsed = gates.parse(gate.expression)
    except gates.GateError:
        threshold = "?"
    else:
        threshold = gates.render(parsed.right)
    value = "null" if gate.value is None else _number(gate.value)
    text = f"gate `{gate.expression}`: value {value}, threshold {threshold}"
    return f"{text} ({gate.reason})" if gate.reason else text


def _steady_state(scenario: result_model.Scenario, journal: inputs.Journal | None) -> list[str]:
    """The steady state that did not hold: the probes that missed their tolerance, with what they returned."""
    out = []
    for which, held, words in (
        ("before", scenario.steady_state.before, "before the fault (nothing was measured against it)"),
        ("after", scenario.steady_state.after, "after the method (checked before the rollbacks)"),
    ):
        state = getattr(journal, which, None) if journal is not None else None
        probes = [_probe(p) for p in (state.probes if state is not None else ()) if _missed(p)]
        if held is False or probes:
            detail = "; ".join(probes) if probes else "no probe in the journal says which"
            out.append(f"steady state deviated {words}: {detail}")
    if not out and scenario.deviated:
        out.append("steady state deviated (no probe in the journal says which)")
    return out


def _missed(probe: inputs.Activity) -> bool:
    return probe.tolerance_met is False or probe.status == "failed" or bool(probe.exception)


def _probe(probe: inputs.Activity) -> str:
    """`probe etcd-has-quorum returned false (tolerance true)`, or the exception it raised."""
    name = probe.name or "(unnamed probe)"
    if probe.exception:
        return f"probe `{name}` raised {_cut(str(probe.exception))}"
    got = _json(probe.output) if probe.has_output else "nothing"
    tolerance = f" (tolerance {_json(probe.tolerance)})" if probe.has_tolerance else ""
    status = f", status {probe.status}" if probe.status not in (None, "succeeded") else ""
    return f"probe `{name}` returned {got}{tolerance}{status}"


def _failed_actions(journal: inputs.Journal) -> list[str]:
    """Method actions and rollbacks that failed: a fault that never started, an undo that did not."""
    out = []
    for a in journal.activities:
        if a.status == "failed" and a.type == "action":
            where = "rollback" if a.section == "rollbacks" else "action"
            why = f": {_cut(str(a.exception))}" if a.exception else ""
            out.append(f"{where} `{a.name}` failed{why}")
    return out


def _json(value: Any) -> str:
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):  # a probe may return anything; its repr says enough
        text = repr(value)
    return _cut(text)


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _number(value: float) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def markdown_lines(found: list[Failure]) -> list[str]:
    """summary.md's "Why it failed" section (nothing when every trial passed)."""
    if not found:
        return []
    lines = ["", "## Why it failed", ""]
    for f in found:
        lines.append(f"- **{f.label}**:")
        lines += [f"  - {r}" for r in f.reasons]
    return lines


def console_lines(found: list[Failure]) -> list[str]:
    """Terse lines for `harness gate`'s CI log: one per reason, each naming its trial."""
    return [f"FAILED {f.label}: {r}" for f in found for r in f.reasons]

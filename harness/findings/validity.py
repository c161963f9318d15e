"""Rules over whether a scenario's figures can be taken at their word: a lagging load generator,
a baseline that was not steady, a fault with no visible effect, an abort, a gate passed by a hair."""

from __future__ import annotations

import re
from collections.abc import Mapping

from harness.findings.registry import Draft, Rule, ScenarioInputs, Scope, Severity, ms, number, percent

GENERATOR_LATE_SHARE = 0.02
"""Above 2 % of requests sent late by the load generator itself, latency is not about the service
(docs/scoring.md: "above a few percent"; the gate it suggests is `generator_late_share < 0.02`)."""
GENERATOR_LAG_MAX_MS = 1000.0
"""A single lag of a whole 1 s bucket: the generator stalled long enough to leave a bucket empty."""
NEAR_GATE_SHARE = 0.05
"""A passed gate within 5 % of its threshold: the spread between trials of one scenario is
usually larger, so the next run may fail it."""
_SIMPLE_GATE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|<|>=|>)\s*(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")
"""`metric OP number`: the gates whose threshold is one number; others are not judged."""


def generator_lagged(inputs: ScenarioInputs) -> Draft | None:
    """The load generator itself fell behind its schedule: the latency figures include its own
    lateness and fewer requests went out than planned, so they are not about the service.

    Reads `generator_late_share` and `generator_lag_max_ms`."""
    share, lag = inputs.metric("generator_late_share"), inputs.metric("generator_lag_max_ms")
    late = share is not None and share > GENERATOR_LATE_SHARE
    stalled = lag is not None and lag > GENERATOR_LAG_MAX_MS
    if not late and not stalled:
        return None
    parts = []
    if share is not None:
        parts.append(f"{percent(share)} of requests were sent late by the load generator")
    if lag is not None:
        parts.append(f"its largest lag was {ms(lag)}")
    return Draft(
        title="The load generator lagged: latency figures are not about the service",
        evidence="; ".join(parts) + ".",
        recommendation=(
            "Give Locust more CPU (load.processes, a less busy machine) and run again; gate on "
            "generator_late_share < 0.02 so such a run is not taken at its word."
        ),
        t_from=inputs.instant("fault_start_t"),
        t_to=inputs.instant("end_t"),
    )


def baseline_not_steady(inputs: ScenarioInputs) -> Draft | None:
    """The baseline before the fault was not steady (a latency trend, a lagging generator): the
    fault's effect is measured against a moving reference.

    Reads `baseline_check` (steady, went_on, checks)."""
    check = inputs.scenario.get("baseline_check")
    if not isinstance(check, Mapping) or check.get("steady") is not False:
        return None
    failed = [c for c in check.get("checks") or [] if isinstance(c, Mapping) and c.get("passed") is False]
    said = []
    for c in failed:
        text = str(c.get("name"))
        value, threshold = number(c.get("value")), number(c.get("threshold"))
        if value is not None and threshold is not None:
            text += f" {value:g} (threshold {threshold:g})"
        if c.get("evidence"):
            text += f": {c['evidence']}"
        said.append(text)
    went_on = check.get("went_on") is True
    evidence = "The baseline was not steady" + (f" ({'; '.join(said)})" if said else "") + "; "
    evidence += "the fault was injected anyway." if went_on else "the fault was not injected."
    return Draft(
        title="Baseline not steady" + (": figures measured against a moving reference" if went_on else ""),
        evidence=evidence,
        recommendation=(
            "Lengthen windows.warmup_s and windows.baseline_s until the baseline settles, and find what drifts "
            "(a cache warming, another job on the machine) before trusting this scenario's figures."
        ),
        t_from=inputs.instant("baseline_start_t"),
        t_to=inputs.instant("fault_start_t"),
    )


def no_effect(inputs: ScenarioInputs) -> Draft | None:
    """None of the fault's activities was seen to take effect: the scenario may have measured a
    healthy cluster, and a pass then says nothing about the fault.

    Reads `fault_effect` (outcome, activities)."""
    effect = inputs.scenario.get("fault_effect")
    if not isinstance(effect, Mapping) or effect.get("outcome") != "no-effect-observed":
        return None
    activities = [a for a in effect.get("activities") or [] if isinstance(a, Mapping)]
    said = [
        f"{a.get('name')}: {a.get('evidence') or 'no effect seen'}"
        + (f" ({a['source']})" if a.get("source") else "")
        for a in activities
    ]
    return Draft(
        title="No effect observed: the fault may not have been injected",
        evidence="No activity of the fault was seen to take effect"
        + (f" ({'; '.join(said)})." if said else "."),
        recommendation=(
            "Check that the experiment reached its target (selectors, node and zone names, permissions) and "
            "run it again; a fault that did nothing measures nothing."
        ),
        t_from=inputs.instant("fault_start_t"),
        t_to=inputs.instant("fault_end_t"),
    )


def aborted(inputs: ScenarioInputs) -> Draft | None:
    """An abort condition tripped and the rollbacks ran early: the fault was worse than the plan
    allows, and the scenario's figures stop where the abort did.

    Reads `aborted_by`."""
    reason = inputs.scenario.get("aborted_by")
    if not reason:
        return None
    return Draft(
        title="Aborted: the fault was worse than the plan allows",
        evidence=f"The abort condition `{reason}` tripped; rollbacks ran.",
        recommendation=(
            "Fix what the abort caught before running this fault at this strength again, or try it first with "
            "less (one replica, one node) to see where the system breaks."
        ),
        t_from=inputs.instant("fault_start_t"),
        t_to=inputs.instant("end_t"),
    )


def gate_near_threshold(inputs: ScenarioInputs) -> Draft | None:
    """A gate passed within a few percent of its threshold: the next run may well fail it, so it is
    a risk to treat before it becomes a failure.

    Reads `gates` (expression, value, passed) for gates of the form `metric OP number`."""
    close = []
    for gate in inputs.scenario.get("gates") or []:
        if not isinstance(gate, Mapping) or gate.get("passed") is not True or gate.get("skipped"):
            continue
        match = _SIMPLE_GATE.match(str(gate.get("expression") or ""))
        value = number(gate.get("value"))
        if match is None or value is None:
            continue
        threshold = float(match.group(3))
        if threshold == 0:
            continue
        margin = abs(threshold - value) / abs(threshold)
        if margin <= NEAR_GATE_SHARE:
            close.append(
                (margin, f"`{gate['expression']}` passed with {value:g} ({100 * margin:.1f} % from it)")
            )
    if not close:
        return None
    close.sort()
    return Draft(
        title="A gate passed within a few percent of its threshold",
        evidence="; ".join(text for _, text in close) + ".",
        recommendation=(
            "Run more trials to see the spread, and improve the metric before the gate fails; a threshold "
            "moved to fit one result hides the risk."
        ),
        t_from=inputs.instant("fault_start_t"),
        t_to=inputs.instant("end_t"),
    )


RULES = (
    Rule("aborted", Severity.CRITICAL, Scope.SCENARIO, ("aborted_by",), aborted),
    Rule("no-effect-observed", Severity.WARNING, Scope.SCENARIO, ("fault_effect",), no_effect),
    Rule("baseline-not-steady", Severity.WARNING, Scope.SCENARIO, ("baseline_check",), baseline_not_steady),
    Rule("generator-lagged", Severity.WARNING, Scope.SCENARIO,
         ("metrics.generator_late_share", "metrics.generator_lag_max_ms"), generator_lagged),
    Rule("gate-near-threshold", Severity.INFO, Scope.SCENARIO, ("gates",), gate_near_threshold),
)  # fmt: skip
"""The rules on whether figures can be trusted, in the order they are listed."""

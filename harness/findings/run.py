"""Rules over a run as a whole: enough trials per scenario for a comparison to call a
difference, and a target whose replicas all sit in one zone."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping

from harness.findings.registry import Draft, Rule, RunInputs, Scope, Severity

ALPHA = 0.05
"""The comparison page's default chance of any false "better" or "worse" (`harness compare --alpha`)."""
MAX_TRIALS = 100
"""The most trials a plan's scenario may ask for."""


def min_p_value(trials: int) -> float:
    """The smallest two-sided p the exact rank-sum test can give with this many trials a side:
    2 / C(2n, n), complete separation (harness.compare.stats.min_p_value for equal sides)."""
    return 1.0 if trials < 1 else min(1.0, 2 / math.comb(2 * trials, trials))


def trials_needed(level: float) -> int:
    """The fewest trials a side with which the exact test can reach p < level at all."""
    return next((n for n in range(1, MAX_TRIALS + 1) if min_p_value(n) < level), MAX_TRIALS)


def _scored(scenario: Mapping) -> bool:
    return scenario.get("status") == "completed" and scenario.get("metrics") is not None


def too_few_trials(inputs: RunInputs) -> list[Draft]:
    """With few trials no comparison of this run with another can call a difference, however
    large: the exact rank test cannot reach the page's level. Says how many trials a side would.

    Reads each scenario's trials (completed and scored) and the number of scenarios, which share
    the comparison page's alpha (0.05) between them. One finding names every scenario short of trials."""
    counts = Counter(str(s.get("name")) for s in inputs.scenarios if _scored(s))
    applicable = {str(s.get("name")) for s in inputs.scenarios if s.get("status") != "not-applicable"}
    level = ALPHA / max(1, len(applicable))
    needed = trials_needed(level)
    short = {name: trials for name, trials in counts.items() if trials < needed}
    if not short:
        return []
    fewest = min(short.values())
    said = "; ".join(f"{name}: {trials} (best p {min_p_value(trials):.3g})" for name, trials in short.items())
    n = len(applicable)
    share = (
        f"the page's alpha of {ALPHA:g}"
        if n == 1
        else f"{level:.3g}, the share of alpha {ALPHA:g} each of {n} scenarios gets"
    )
    return [
        Draft(
            title=f"Too few trials for a verdict: {fewest} where a comparison needs {needed} a side",
            evidence=(
                f"Scored trials per scenario: {said}. The exact rank test's smallest p with that many trials "
                f"a side is above {share} on a comparison page."
            ),
            recommendation=(
                f"Run {needed} trials a side for a comparison to be able to call a difference in each "
                "scenario's primary metric; its other metrics need more (Holm over them)."
            ),
            scenario=next(iter(short)) if len(short) == 1 else None,
        )
    ]


def _zones(target: Mapping) -> Counter[str] | None:
    """Nodes per zone from the target's facts (testbed: `nodes`; cluster: `zones`); None if unknown."""
    nodes, zones = target.get("nodes"), target.get("zones")
    if isinstance(nodes, list) and nodes and all(isinstance(n, Mapping) for n in nodes):
        if any(not n.get("zone") for n in nodes):
            return None
        return Counter(str(n["zone"]) for n in nodes)
    if isinstance(zones, Mapping) and zones:
        counted = Counter({str(k): int(v) for k, v in zones.items() if isinstance(v, int) and v > 0})
        return None if "unlabelled" in counted else counted
    return None


def one_zone(inputs: RunInputs) -> list[Draft]:
    """Every node, and so every replica, is in one zone: a zone outage takes the whole service down
    however many replicas it runs.

    Reads the target's `nodes` (testbed: name and zone) or `zones` (cluster: nodes per zone)."""
    zones = _zones(inputs.target)
    if zones is None or len(zones) != 1:
        return []
    ((zone, nodes),) = zones.items()
    return [
        Draft(
            title="Replicas concentrated in one zone",
            evidence=f"All {nodes} node{'s' if nodes != 1 else ''} of the target are in zone {zone}.",
            recommendation=(
                "Spread the nodes over at least three zones and the service's pods over them "
                "(topologySpreadConstraints on topology.kubernetes.io/zone, maxSkew 1)."
            ),
        )
    ]


RULES = (
    Rule("too-few-trials", Severity.INFO, Scope.RUN, ("trials per scenario", "scenarios"), too_few_trials),
    Rule("replicas-in-one-zone", Severity.WARNING, Scope.RUN, ("target.nodes", "target.zones"), one_zone),
)
"""The run-level rules; each returns a list (one finding per scenario it is about, or none)."""

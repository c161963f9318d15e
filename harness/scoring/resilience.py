"""The resilience score: one number from 0 to 100, and the penalties that explain it.

Start from 100 and subtract a penalty per way users were hurt; each penalty is capped, so the
breakdown says at a glance what cost the points. docs/scoring.md gives the reasoning and compares
the score with Krkn's and LitmusChaos's. Called by harness.scoring.metrics.

Anything that could not be measured (no recovery seen, no completed request to judge) costs the
full penalty of its criterion, and a data-loss check that failed caps the score: a scenario
cannot score well by hiding its impact.
"""

from __future__ import annotations

from dataclasses import dataclass

RECOVERY_MAX = 40.0
"""Recovery time weighs most: it is how long the business is down, and the thing a platform change
(self-managed control plane to EKS) is meant to improve. The full 40 points are reserved for a
scenario that did not recover."""
RECOVERY_FINITE_MAX = 35.0
"""A recovery, however late, costs less than this: 35 x t / (t + target), half of it at the target
time. A penalty that saturated at the target made recovering in 61 s cost as much as never
recovering; this one keeps ordering long recoveries, and leaves 5 points between the latest
recovery and none, so the order survives the score's rounding."""
AVAILABILITY_MAX = 25.0
ERRORS_MAX = 20.0
ERROR_RATE_FULL_PENALTY = 0.05
"""One request in twenty failing over the horizon costs all 20 points."""
LATENCY_MAX = 10.0
"""Slowness hurts less than failure; the full 10 points at a horizon p99 twice the p95 threshold.
The p99 is pooled over the horizon's requests: the worst of per-bucket p99s, as used before, is
the slowest request or two of a small bucket, and grows with the number of buckets observed."""
DATA_LOSS_CAP = 50.0
"""Losing an acknowledged write is a broken promise however fast the recovery: at most 50."""
DATA_LOSS_PER_WRITE = 5.0
UNVERIFIED_CAP = 50.0
"""Acknowledged writes that could not be checked (the verification failed): a loss cannot be
ruled out, so the score is capped as for a loss, without the per-write cost (none is known lost)."""


@dataclass(frozen=True)
class Resilience:
    """The score and what was subtracted from 100 to get it."""

    score: float
    penalties: dict[str, float]
    """recovery, availability, errors, latency, data_loss: points subtracted (rounded to 0.01)."""


def recovery_penalty(recovery_time_s: float | None, target_recovery_s: float) -> float:
    """Points for the recovery time: RECOVERY_MAX when not recovered, else below RECOVERY_FINITE_MAX."""
    if recovery_time_s is None:
        return RECOVERY_MAX
    t = max(0.0, recovery_time_s)
    return RECOVERY_FINITE_MAX * t / (t + target_recovery_s)


def resilience_score(
    *,
    recovery_time_s: float | None,
    target_recovery_s: float,
    availability: float | None,
    error_rate: float | None,
    p99_ms: float | None,
    p95_threshold_ms: float | None,
    data_loss: int | None,
    data_loss_unverified: bool = False,
) -> Resilience:
    """The score from the scenario's metrics; see the module constants for the weights.

    p99_ms: the horizon's pooled corrected p99. data_loss_unverified: writes were acknowledged and
    their check failed (data_loss is then None).
    """
    recovery = recovery_penalty(recovery_time_s, target_recovery_s)
    unavailable = 1.0 if availability is None else 1.0 - availability
    errors = 1.0 if error_rate is None else min(1.0, error_rate / ERROR_RATE_FULL_PENALTY)
    if p95_threshold_ms is None:
        latency = 0.0  # no threshold to judge against (no baseline latency and none set)
    elif p99_ms is None:
        latency = 1.0  # load ran and nothing completed
    else:
        latency = min(1.0, max(0.0, p99_ms / p95_threshold_ms - 1.0))
    penalties = {
        "recovery": recovery,
        "availability": AVAILABILITY_MAX * unavailable,
        "errors": ERRORS_MAX * errors,
        "latency": LATENCY_MAX * latency,
    }
    score = max(0.0, 100.0 - sum(penalties.values()))
    before_loss = score
    if data_loss is not None and data_loss > 0:
        score = max(0.0, min(score, DATA_LOSS_CAP) - DATA_LOSS_PER_WRITE * data_loss)
    elif data_loss is None and data_loss_unverified:
        score = min(score, UNVERIFIED_CAP)
    penalties["data_loss"] = before_loss - score
    return Resilience(score=round(score, 1), penalties={k: round(v, 2) for k, v in penalties.items()})

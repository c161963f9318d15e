"""A scenario's metrics (DESIGN.md, "What we measure") from its Series and Phases.

`score_scenario` is the whole of scoring for one scenario trial: split the timeline into
windows, judge every bucket's health, find impact and recovery, count what was lost and
what it cost, and score it. Pure and deterministic: the same inputs give the same
`to_dict()`, floats rounded (seconds and ms to 3 decimals, rates to 6, dollars to 2), so
`harness score RUN_DIR` reproduces result.json from files alone. Called by the engine.

Buckets and windows. A bucket covers [t, t + dt); a request belongs to the bucket of its
intended send time. The baseline is the buckets wholly inside [baseline start, fault start).
The observation is the buckets that end after the fault start and by the end: the bucket in
which the fault starts is the first one observed (the fault hit part of it), and a bucket
cut short by the end of the load is left out (it would look like a stall). The fault window
runs from the first observed bucket to the recovery point, the recovery window from there
to the end of the observation. docs/scoring.md has the definitions of every metric.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.result import defaults
from harness.scoring import health, resilience
from harness.scoring.health import HealthPolicy
from harness.scoring.windows import Phases
from harness.timeline import Series, Window, pooled_window

_EPS_S = 1e-9


@dataclass(frozen=True)
class ScoringSettings:
    """How a plan wants its scenarios judged."""

    policy: HealthPolicy = field(default_factory=HealthPolicy)
    stability_s: float = defaults.STABILITY_S
    """Healthy time that counts as recovered (harness.result.defaults says why)."""
    cost_per_hour_usd: float = defaults.COST_PER_HOUR_USD
    """What an hour of downtime costs (harness.result.defaults)."""
    target_recovery_s: float = defaults.TARGET_RECOVERY_S
    """Recovery time at which the resilience score's recovery penalty is full (harness.result.defaults)."""

    def __post_init__(self) -> None:
        if self.stability_s < 0.0:
            raise ValueError(f"stability_s must not be negative, got {self.stability_s}")
        if self.cost_per_hour_usd < 0.0:
            raise ValueError(f"cost_per_hour_usd must not be negative, got {self.cost_per_hour_usd}")
        if not self.target_recovery_s > 0.0:
            raise ValueError(f"target_recovery_s must be positive, got {self.target_recovery_s}")


def settings_for(plan: Any) -> ScoringSettings:
    """The settings of a plan (its `slo`, `windows.stability_s` and `cost.per_hour_usd`); the
    engine, `harness score` and `harness compare` judge its trials with them."""
    return ScoringSettings(
        policy=HealthPolicy(
            error_rate=plan.slo.error_rate,
            p95_ms=plan.slo.p95_ms,
            kpi_drop=plan.slo.kpi_drop,
            confidence=plan.slo.confidence,
            impact_buckets=plan.slo.impact_buckets,
        ),
        stability_s=plan.windows.stability_s,
        cost_per_hour_usd=plan.cost.per_hour_usd,
    )


@dataclass(frozen=True, eq=False)
class HealthTrack:
    """Per bucket from the baseline to the end of the observation: its start, width and health."""

    t: np.ndarray
    dt: np.ndarray
    healthy: np.ndarray


@dataclass(frozen=True)
class ScenarioMetrics:
    """The metrics of one scenario trial; `to_dict()` is its `metrics` in result.json."""

    time_to_impact_s: float | None
    recovery_time_s: float | None
    recovery_after_fault_end_s: float | None
    requests: int
    failed_requests: int
    error_rate: float | None
    peak_error_rate: float | None
    availability: float | None
    false_alarm_rate: float | None
    """Share of baseline buckets the same rules judge unhealthy (no fault was running); None without baseline."""
    latency_ms: dict[str, dict[str, float | None]]
    latency_uncorrected_ms: dict[str, dict[str, float | None]]
    peak_p99_ms: float | None
    generator_late_share: float | None
    """Requests the load generator sent late / requests, over the observation; None without requests."""
    generator_lag_max_ms: float | None
    """The load generator's largest lag over the observation; None when nothing was observed."""
    kpi: int
    kpi_baseline_per_s: float | None
    kpi_lost: float | None
    downtime_s: float
    downtime_cost_usd: float
    data_loss: int | None
    resilience_score: float
    thresholds: dict[str, Any]
    score_breakdown: dict[str, float] = field(compare=False)
    """Points subtracted from 100, per criterion (harness.scoring.resilience)."""
    recovered_t: float | None = field(compare=False)
    """The recovery point (start of the final stable healthy run), Unix seconds; None if not recovered."""
    healthy: HealthTrack = field(compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time_to_impact_s": self.time_to_impact_s,
            "recovery_time_s": self.recovery_time_s,
            "recovery_after_fault_end_s": self.recovery_after_fault_end_s,
            "requests": self.requests,
            "failed_requests": self.failed_requests,
            "error_rate": self.error_rate,
            "peak_error_rate": self.peak_error_rate,
            "availability": self.availability,
            "false_alarm_rate": self.false_alarm_rate,
            "latency_ms": {w: dict(p) for w, p in self.latency_ms.items()},
            "latency_uncorrected_ms": {w: dict(p) for w, p in self.latency_uncorrected_ms.items()},
            "peak_p99_ms": self.peak_p99_ms,
            "generator_late_share": self.generator_late_share,
            "generator_lag_max_ms": self.generator_lag_max_ms,
            "kpi": self.kpi,
            "kpi_baseline_per_s": self.kpi_baseline_per_s,
            "kpi_lost": self.kpi_lost,
            "downtime_s": self.downtime_s,
            "downtime_cost_usd": self.downtime_cost_usd,
            "data_loss": self.data_loss,
            "resilience_score": self.resilience_score,
            "thresholds": dict(self.thresholds),
        }


def score_scenario(
    series: Series,
    phases: Phases,
    settings: ScoringSettings,
    data_loss: int | None = None,
    *,
    limits: health.Thresholds | None = None,
) -> ScenarioMetrics:
    """Every metric of one scenario trial from its timeline and phases.

    `limits` judges the buckets with thresholds resolved elsewhere (one scale for every trial of
    a comparison); by default they are resolved from this trial's own baseline.
    """
    base_lo, lo, hi = _bounds(series, phases, phases.end_t)
    baseline = series.window_at(base_lo, lo, phases.baseline_start_t)
    if limits is None:
        limits = health.thresholds(settings.policy, baseline)
    # baseline and observation judged apart: a breaching run never spans the fault start
    ok = np.concatenate((health.healthy(series, limits, base_lo, lo), health.healthy(series, limits, lo, hi)))
    observed = ok[lo - base_lo :]
    impacted = np.flatnonzero(health.impact(~observed, limits.impact_buckets))

    time_to_impact_s = None
    if impacted.size:
        time_to_impact_s = _round(max(0.0, float(series.t[lo + impacted[0]]) - phases.fault_start_t), 3)
    recovered_at = _recovery_position(series, lo, hi, impacted, settings.stability_s)
    if recovered_at is None:
        recovered_t = None
        recovery_time_s = recovery_after_s = None
        fault_hi = hi
    else:
        recovered_t = _recovered_t(series, phases, recovered_at, impacted, hi)
        recovery_time_s = _round(max(0.0, recovered_t - phases.fault_start_t), 3) if impacted.size else 0.0
        recovery_after_s = _round(max(0.0, recovered_t - phases.fault_end_t), 3) if impacted.size else 0.0
        fault_hi = recovered_at
    fault = series.window_at(lo, fault_hi, phases.fault_start_t)
    recovery = series.window_at(fault_hi, hi, phases.end_t)

    requests = int(series.requests[lo:hi].sum())
    failed = int(series.failures[lo:hi].sum())
    kpi_rate = baseline.kpi / baseline.duration_s if baseline.duration_s > 0 else None
    kpi_lost = None if kpi_rate is None else _round(max(0.0, kpi_rate * fault.duration_s - fault.kpi), 3)
    downtime_s = float(series.dt[lo:hi][~observed].sum())
    availability = float(observed.mean()) if observed.size else None
    false_alarm_rate = float((~ok[: lo - base_lo]).mean()) if lo > base_lo else None
    error_rate = failed / requests if requests else None
    peak_p99_ms = _peak(series.latency_corrected.p99_ms[lo:hi])
    late_share = int(series.gen_late[lo:hi].sum()) / requests if requests else None
    gen_lag_max_ms = float(series.gen_lag_max_ms[lo:hi].max()) if hi > lo else None
    score = resilience.resilience_score(
        recovery_time_s=recovery_time_s,
        target_recovery_s=settings.target_recovery_s,
        availability=availability,
        error_rate=error_rate,
        peak_p99_ms=peak_p99_ms,
        p95_threshold_ms=limits.p95_ms,
        data_loss=data_loss,
    )
    return ScenarioMetrics(
        time_to_impact_s=time_to_impact_s,
        recovery_time_s=recovery_time_s,
        recovery_after_fault_end_s=recovery_after_s,
        requests=requests,
        failed_requests=failed,
        error_rate=_round(error_rate, 6),
        peak_error_rate=_round(_peak(series.error_rate[lo:hi]), 6),
        availability=_round(availability, 6),
        false_alarm_rate=_round(false_alarm_rate, 6),
        latency_ms=_latency(baseline, fault, recovery, corrected=True),
        latency_uncorrected_ms=_latency(baseline, fault, recovery, corrected=False),
        peak_p99_ms=_round(peak_p99_ms, 3),
        generator_late_share=_round(late_share, 6),
        generator_lag_max_ms=_round(gen_lag_max_ms, 3),
        kpi=int(series.kpi[lo:hi].sum()),
        kpi_baseline_per_s=_round(kpi_rate, 6),
        kpi_lost=kpi_lost,
        downtime_s=round(downtime_s, 3),
        downtime_cost_usd=round(settings.cost_per_hour_usd * downtime_s / 3600.0, 2),
        data_loss=data_loss,
        resilience_score=score.score,
        thresholds=limits.to_dict(),
        score_breakdown=score.penalties,
        recovered_t=recovered_t,
        healthy=HealthTrack(series.t[base_lo:hi].copy(), series.dt[base_lo:hi].copy(), ok),
    )


def pooled_thresholds(policy: HealthPolicy, trials: Iterable[tuple[Series, Phases]]) -> health.Thresholds:
    """The policy resolved against the baseline windows of several trials pooled into one (their
    buckets together, latency bins merged): one scale to judge all of them, as `harness compare`
    does, rather than each trial against its own baseline. One trial gives its own thresholds."""
    parts = []
    for series, phases in trials:
        base_lo, lo, _ = _bounds(series, phases, phases.end_t)
        parts.append((series, base_lo, lo))
    return health.thresholds(policy, pooled_window(parts))


def recovered(series: Series, phases: Phases, settings: ScoringSettings) -> float | None:
    """The recovery point (Unix seconds) if, by `phases.end_t`, the scenario has recovered as
    `score_scenario` defines it (its `recovered_t`); None if not (yet)."""
    return RecoveryWatch(phases, settings).recovered(series, phases.end_t)


class RecoveryWatch:
    """`recovered`, asked every second on a growing series by the engine's recovery watch.

    It judges only bucket health from the per-bucket arrays (no percentiles over the fault and
    recovery windows; bins only of buckets whose p95 is over the limit) and impact runs as
    `score_scenario` does (`health.impact`), and keeps the baseline's thresholds while the baseline's buckets hold the
    same counts (a late delta for one of them changes its requests, and they are resolved again),
    so a check costs about the same after six hours of load as after five minutes
    (benchmarks/recovery_watch.py). State: the thresholds of the last check, owned by the caller.
    """

    def __init__(self, phases: Phases, settings: ScoringSettings) -> None:
        self.phases = phases
        self.settings = settings
        self._baseline: tuple[int, ...] | None = None
        self._limits: health.Thresholds | None = None

    def recovered(self, series: Series, end_t: float) -> float | None:
        """The recovery point if recovered by end_t (the last closed bucket's end); else None."""
        phases = self.phases
        base_lo, lo, hi = _bounds(series, phases, end_t)
        key = (base_lo, lo, int(series.requests[base_lo:lo].sum()), int(series.latency_corrected.zero[base_lo:lo].sum()),
               int(series.failures[base_lo:lo].sum()), int(series.kpi[base_lo:lo].sum()), int(series.t[0]) if len(series) else 0)  # fmt: skip
        if key != self._baseline or self._limits is None:
            baseline = series.window_at(base_lo, lo, phases.baseline_start_t)
            self._limits = health.thresholds(self.settings.policy, baseline)
            self._baseline = key
        observed = health.healthy(series, self._limits, lo, hi)
        impacted = np.flatnonzero(health.impact(~observed, self._limits.impact_buckets))
        at = _recovery_position(series, lo, hi, impacted, self.settings.stability_s)
        if at is None:
            return None
        return _recovered_t(series, phases, at, impacted, hi)


def _bounds(series: Series, phases: Phases, end_t: float) -> tuple[int, int, int]:
    """Bucket positions: the baseline's first, the first ending after the fault start (the first
    observed), and one past the last ending by end_t."""
    ends = series.t + series.dt
    lo = int(np.searchsorted(ends, phases.fault_start_t + _EPS_S, side="right"))
    base_lo = min(lo, int(np.searchsorted(series.t, phases.baseline_start_t - _EPS_S, side="left")))
    hi = max(lo, int(np.searchsorted(ends, end_t + _EPS_S, side="right")))
    return base_lo, lo, hi


def _recovered_t(series: Series, phases: Phases, at: int, impacted: np.ndarray, hi: int) -> float:
    """The recovery point of a recovery found at position `at` (`_recovery_position`)."""
    if not impacted.size:
        return phases.fault_start_t
    if at < hi:
        return float(series.t[at])
    return float(series.t[hi - 1] + series.dt[hi - 1])  # stability 0 and the last bucket unhealthy


def _recovery_position(
    series: Series, lo: int, hi: int, impacted: np.ndarray, stability_s: float
) -> int | None:
    """Position of the first bucket of the final stable run, if it lasts `stability_s` within the observation.

    The final run is everything after the last impacted bucket (offsets from lo, `health.impact`);
    a run that ends in an impact never counts, however long, while a lone unhealthy bucket (a run
    shorter than an impact) neither ends nor resets it. hi means a zero-length run at the end
    (stability 0).
    """
    if hi <= lo:
        return None  # nothing observed after the fault start: recovery was not seen
    start = lo + int(impacted[-1]) + 1 if impacted.size else lo
    if float(series.dt[start:hi].sum()) < stability_s - _EPS_S:
        return None  # the stable run would extend past the end: not enough observation
    return start


def _latency(
    baseline: Window, fault: Window, recovery: Window, corrected: bool
) -> dict[str, dict[str, float | None]]:
    def pick(w: Window) -> dict[str, float | None]:
        values = w.latency_corrected_ms if corrected else w.latency_ms
        return {label: _round(v, 3) for label, v in values.items()}

    return {"baseline": pick(baseline), "fault": pick(fault), "recovery": pick(recovery)}


def _peak(values: np.ndarray) -> float | None:
    """The largest value, ignoring NaN (buckets without requests); None when there is none."""
    finite = values[~np.isnan(values)]
    return float(finite.max()) if finite.size else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)

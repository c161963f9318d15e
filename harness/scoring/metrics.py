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
(the impact) runs from the first observed bucket to the recovery point, the recovery window from
there to the end of the observation. The applied window runs from the first observed bucket to
the last one that starts before the fault's undo: what users met while the fault was in place,
however soon they were judged recovered. docs/scoring.md has the definitions of every metric.

The horizon. Recovery is judged over the observation, which ends where the outcome says (the
engine stops once it has seen recovery and stability). Rates that summarise the trial
(availability, error rate, downtime and its cost, KPI lost, the score's latency term) are
counted over a horizon fixed before the run instead: the observed buckets that end by
`fault start + horizon_s`. Over a window that ends at recovery, a trial that flapped and
recovered late was divided by a longer window and looked better than one clean outage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.result import defaults
from harness.scoring import health, resilience
from harness.scoring.baseline import BaselineSettings
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
    """Recovery time that costs half the score's finite recovery penalty (harness.result.defaults)."""
    horizon_s: float = defaults.HORIZON_S
    """The fixed window from the fault start for availability, error rate, downtime and KPI lost
    (harness.result.defaults says why the default)."""
    baseline: BaselineSettings = field(default_factory=BaselineSettings)
    """How steady the load must be before the fault (harness.scoring.baseline)."""

    def __post_init__(self) -> None:
        if self.stability_s < 0.0:
            raise ValueError(f"stability_s must not be negative, got {self.stability_s}")
        if self.cost_per_hour_usd < 0.0:
            raise ValueError(f"cost_per_hour_usd must not be negative, got {self.cost_per_hour_usd}")
        if not self.target_recovery_s > 0.0:
            raise ValueError(f"target_recovery_s must be positive, got {self.target_recovery_s}")
        if not self.horizon_s > 0.0:
            raise ValueError(f"horizon_s must be positive, got {self.horizon_s}")


def settings_for(plan: Any) -> ScoringSettings:
    """The settings of a plan (its `slo`, `windows.stability_s` and `horizon`, `cost.per_hour_usd`); the
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
        horizon_s=plan.windows.horizon,
        baseline=BaselineSettings(
            require_steady=plan.baseline.require_steady,
            max_generator_late_share=plan.baseline.max_generator_late_share,
        ),
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
    applied: dict[str, float | int | None]
    """Traffic while the fault was applied (`applied_window`): duration_s, requests,
    failed_requests, error_rate."""
    peak_p99_ms: float | None
    horizon_s: float
    """The horizon the rates were counted over (settings.horizon_s)."""
    horizon_p99_ms: float | None
    """Corrected p99 of the horizon's observed buckets, pooled; the score's latency term. None without latency."""
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
            "applied": dict(self.applied),
            "peak_p99_ms": self.peak_p99_ms,
            "horizon_s": self.horizon_s,
            "horizon_p99_ms": self.horizon_p99_ms,
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
    data_loss_unverified: bool = False,
) -> ScenarioMetrics:
    """Every metric of one scenario trial from its timeline and phases.

    `limits` judges the buckets with thresholds resolved elsewhere (one scale for every trial of
    a comparison); by default they are resolved from this trial's own baseline.
    `data_loss_unverified`: writes were acknowledged but checking them failed (data_loss None),
    which the score does not take for a clean check.
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
    applied = series.window_at(lo, applied_end(series, phases, lo, hi), phases.fault_start_t)

    kpi_rate = baseline.kpi / baseline.duration_s if baseline.duration_s > 0 else None
    h = _horizon(
        series, phases, settings.horizon_s, lo, hi, observed, baseline, recovered=recovered_at is not None
    )
    requests, failed = h.requests, h.failed
    kpi_lost = None
    if kpi_rate is not None and baseline.requests:  # no request in the baseline: no rate to expect from
        kpi_lost = _round(kpi_rate * h.seen_s - h.kpi, 3)
    downtime_s = h.unhealthy_s
    availability = h.healthy_s / h.length_s if h.length_s > 0 else None
    expected = requests + h.unseen_requests
    error_rate = failed / expected if expected > 0 else None
    false_alarm_rate = float((~ok[: lo - base_lo]).mean()) if lo > base_lo else None
    peak_p99_ms = _peak(series.latency_corrected.p99_ms[lo:hi])
    horizon_p99_ms = series.latency_corrected.percentiles(lo, h.hi)["p99"] if h.hi > lo else None
    late_share = int(series.gen_late[lo:hi].sum()) / requests if requests else None
    gen_lag_max_ms = float(series.gen_lag_max_ms[lo:hi].max()) if hi > lo else None
    score = resilience.resilience_score(
        recovery_time_s=recovery_time_s,
        target_recovery_s=settings.target_recovery_s,
        availability=availability,
        error_rate=error_rate,
        p99_ms=horizon_p99_ms,
        p95_threshold_ms=limits.p95_ms,
        data_loss=data_loss,
        data_loss_unverified=data_loss_unverified,
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
        latency_ms=_latency(baseline, applied, fault, recovery, corrected=True),
        latency_uncorrected_ms=_latency(baseline, applied, fault, recovery, corrected=False),
        applied={
            "duration_s": round(phases.fault_end_t - phases.fault_start_t, 3),
            "requests": applied.requests,
            "failed_requests": applied.failures,
            "error_rate": _round(applied.failures / applied.requests, 6) if applied.requests else None,
        },
        peak_p99_ms=_round(peak_p99_ms, 3),
        horizon_s=round(settings.horizon_s, 3),
        horizon_p99_ms=_round(horizon_p99_ms, 3),
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

    A check costs the same after six hours of load as after five minutes
    (benchmarks/recovery_watch.py), because the watch keeps what it derived and redoes only what
    changed since its last check (`Series.changed_from`: new buckets, or late deltas to older ones):

    - the baseline's thresholds, resolved again only when a baseline bucket (or one before it)
      changed;
    - each observed bucket's verdict (`health.healthy`, a black box judged on a position range). A
      check judges the buckets from `CONTEXT_BUCKETS` before the first changed one (or before the
      last one judged: a verdict may wait for the buckets after it) to the end, after as many more
      as warm-up whose verdicts are judged again only to be compared with the kept ones. When they
      differ the rule looks further than `CONTEXT_BUCKETS` and every bucket is judged again;
    - the impacted buckets (`health.impact`, runs of unhealthy buckets as `score_scenario` counts
      them), counted again from the start of the run that holds the first bucket judged again.

    So the answer is always `score_scenario`'s. Percentiles are read per bucket only (bins only of
    buckets whose p95 is over the limit), never over the fault and recovery windows. State: what
    the last check derived, owned by the caller; one watch follows one series as it grows.
    """

    CONTEXT_BUCKETS = 16
    """How far a bucket's verdict may depend on other buckets, either way, beyond the KPI window
    `health.healthy` reads itself (a rule of k consecutive bad buckets needs k - 1). Judging
    3 x 16 buckets more a check costs microseconds."""

    def __init__(self, phases: Phases, settings: ScoringSettings) -> None:
        self.phases = phases
        self.settings = settings
        self._changes: object | None = None
        """The change log of the series judged last (kept, so that another series is told apart)."""
        self._revision = 0
        self._bases: tuple[int, int] | None = None
        """(base_lo, lo) of the last check: positions of the baseline's first and the first observed bucket."""
        self._limits: health.Thresholds | None = None
        self._ok = np.zeros(0, bool)
        """Verdicts of the observed buckets judged, from lo; capacity doubles."""
        self._judged = 0
        self._unhealthy = np.zeros(0, np.int64)
        """Positions (from lo) of the unhealthy buckets among the judged, in order."""
        self._impacted = np.zeros(0, np.int64)
        """Positions (from lo) of the impacted buckets among the judged (`health.impact`), in order."""
        self.rejudged = 0
        """Buckets judged by the last check (for tests and the benchmark: stays small as the run grows)."""

    @property
    def unhealthy(self) -> np.ndarray:
        """Positions, from the first observed bucket, of the buckets the last check found unhealthy."""
        return self._unhealthy

    @property
    def impacted(self) -> np.ndarray:
        """Positions, from the first observed bucket, of the buckets the last check found impacted."""
        return self._impacted

    def recovered(self, series: Series, end_t: float) -> float | None:
        """The recovery point if recovered by end_t (the last closed bucket's end); else None."""
        phases = self.phases
        base_lo, lo, hi = _bounds(series, phases, end_t)
        changed = self._changed_from(series)
        limits = self._limits
        if limits is None or (base_lo, lo) != self._bases or changed < lo:
            baseline = series.window_at(base_lo, lo, phases.baseline_start_t)
            limits = health.thresholds(self.settings.policy, baseline)
            if (base_lo, lo) != self._bases or limits != self._limits:
                self._judged = 0  # verdicts from other positions or thresholds: judge all again
            self._bases, self._limits = (base_lo, lo), limits
        self._judge(series, limits, lo, hi, min(changed - lo, self._judged, hi - lo))
        impacted = self._impacted
        at = _recovery_position(series, lo, hi, impacted, self.settings.stability_s)
        if at is None:
            return None
        return _recovered_t(series, phases, at, impacted, hi)

    def _changed_from(self, series: Series) -> int:
        """The lowest position changed since the last check (len(series) if none; 0 if not known)."""
        changes = series.changes
        if changes is None or changes is not self._changes or series.revision < self._revision:
            low = 0  # another series, or one not built to grow: judge everything
        else:
            since = series.changed_from(self._revision)
            low = len(series) if since is None else since
        self._changes, self._revision = changes, series.revision
        return low

    def _judge(self, series: Series, limits: health.Thresholds, lo: int, hi: int, first: int) -> None:
        """Judge the observed buckets from `first` (from lo) on again, with the context around it."""
        # a pooled run of k buckets makes a verdict depend on the k - 1 buckets either side
        n, margin = hi - lo, max(self.CONTEXT_BUCKETS, 2 * limits.impact_buckets)
        redo = max(0, first - margin)
        warm = max(0, redo - 2 * margin)
        fresh = health.healthy(series, limits, lo + warm, hi)
        check = max(0, redo - margin)  # the warm-up's second half: its verdicts must not have changed
        if not np.array_equal(fresh[check - warm : redo - warm], self._ok[check:redo]):
            warm = redo = 0
            fresh = health.healthy(series, limits, lo, hi)
        if n > self._ok.size:
            grown = np.zeros(max(n, 2 * self._ok.size), bool)
            grown[:redo] = self._ok[:redo]
            self._ok = grown
        self._ok[redo:n] = fresh[redo - warm :]
        before = self._unhealthy[: int(np.searchsorted(self._unhealthy, redo))]
        self._unhealthy = np.concatenate((before, redo + np.flatnonzero(~fresh[redo - warm :])))
        # Runs are counted again from the start of the run of unhealthy buckets reaching `redo`:
        # impacts of runs that end earlier stay as they were.
        start = redo
        if before.size and before[-1] == redo - 1:
            offsets = before - np.arange(before.size)  # equal within a run of consecutive positions
            start = int(before[int(np.searchsorted(offsets, offsets[-1]))])
        kept = self._impacted[: int(np.searchsorted(self._impacted, start))]
        runs = health.impact(~self._ok[start:n], limits.impact_buckets)
        self._impacted = np.concatenate((kept, start + np.flatnonzero(runs)))
        self._judged = n
        self.rejudged = n - warm


@dataclass(frozen=True)
class _Horizon:
    """What the horizon holds: its observed buckets (positions lo to `hi`) and the rest of it."""

    hi: int
    """One past the last observed bucket that ends by the horizon's end."""
    seen_s: float
    """Width of the observed horizon buckets."""
    unseen_s: float
    """Whole buckets of the horizon after the end of the observation."""
    healthy_s: float
    unhealthy_s: float
    requests: int
    failed: int
    kpi: int
    unseen_requests: float
    """Requests the unseen rest is taken to have served (at the baseline rate, after a recovery)."""

    @property
    def length_s(self) -> float:
        return self.seen_s + self.unseen_s


def _horizon(
    series: Series,
    phases: Phases,
    horizon_s: float,
    lo: int,
    hi: int,
    observed: np.ndarray,
    baseline: Window,
    *,
    recovered: bool,
) -> _Horizon:
    """The horizon's buckets, and how the part the observation did not reach counts.

    The engine stops at recovery and stability unless the plan sets `horizon_s`, and a run cut
    short ends earlier still. The rest of the horizon then counts as healthy, serving the
    baseline's request rate without failures, when recovery and stability were seen; else as unhealthy (a scenario cannot score well by hiding its
    impact), with the observed part's error rate and KPI standing for it. Nothing observed at
    all: nothing is counted (the rates are not measured).
    """
    end_t = phases.fault_start_t + horizon_s
    h_hi = min(hi, max(lo, series.ends_by(end_t + _EPS_S)))
    seen = observed[: h_hi - lo]  # verdicts of the observed buckets, from position lo
    dt = series.dt[lo:h_hi]
    seen_s = float(dt.sum())
    unseen_s = 0.0
    if h_hi > lo:
        gap = end_t - float(series.t[h_hi - 1] + series.dt[h_hi - 1])
        unseen_s = max(0.0, float(np.floor(gap / series.bucket_s + 1e-6)) * series.bucket_s)
    base_rate = baseline.requests / baseline.duration_s if baseline.duration_s > 0 else 0.0
    healthy_s = float(dt[seen].sum())
    unhealthy_s = float(dt[~seen].sum())
    if recovered:
        healthy_s += unseen_s
    else:
        unhealthy_s += unseen_s
    return _Horizon(
        hi=h_hi,
        seen_s=seen_s,
        unseen_s=unseen_s,
        healthy_s=healthy_s,
        unhealthy_s=unhealthy_s,
        requests=int(series.requests[lo:h_hi].sum()),
        failed=int(series.failures[lo:h_hi].sum()),
        kpi=int(series.kpi[lo:h_hi].sum()),
        unseen_requests=base_rate * unseen_s if recovered else 0.0,
    )


def _bounds(series: Series, phases: Phases, end_t: float) -> tuple[int, int, int]:
    """Bucket positions: the baseline's first, the first ending after the fault start (the first
    observed), and one past the last ending by end_t."""
    lo = series.ends_by(phases.fault_start_t + _EPS_S)
    base_lo = min(lo, int(np.searchsorted(series.t, phases.baseline_start_t - _EPS_S, side="left")))
    hi = max(lo, series.ends_by(end_t + _EPS_S))
    return base_lo, lo, hi


def applied_end(series: Series, phases: Phases, lo: int, hi: int) -> int:
    """One past the last observed bucket (from `lo`, the first) that starts before the fault's undo:
    the applied window's end. The bucket the fault starts in is always in it, so a fault undone
    within a bucket is still measured; never past `hi`, the end of the observation."""
    end = int(np.searchsorted(series.t, phases.fault_end_t - _EPS_S, side="left"))
    return min(hi, max(end, lo + 1))


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
    baseline: Window, applied: Window, fault: Window, recovery: Window, corrected: bool
) -> dict[str, dict[str, float | None]]:
    def pick(w: Window) -> dict[str, float | None]:
        values = w.latency_corrected_ms if corrected else w.latency_ms
        return {label: _round(v, 3) for label, v in values.items()}

    return {
        "baseline": pick(baseline),
        "applied": pick(applied),
        "fault": pick(fault),
        "recovery": pick(recovery),
    }


def _peak(values: np.ndarray) -> float | None:
    """The largest value, ignoring NaN (buckets without requests); None when there is none."""
    finite = values[~np.isnan(values)]
    return float(finite.max()) if finite.size else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(float(value), digits)

"""Is the load steady before the fault? The baseline check, judged on the baseline's buckets.

A fault injected into load that is already breaking down measures nothing about the fault: its
impact, recovery and cost are the overload's. The engine asks `judge` once the baseline window has
run, before the first fault activity, and injects only when the verdict is steady (unless the plan
says to go on); `harness score` asks it again from the run folder. Pure: a Series, the window and
the settings in, a `Verdict` with one `Check` per criterion out (docs/scoring.md, "The baseline
check", says why each threshold is what it is):

- `load_running`: the timeline covers at least half the window: a load that started late, or a
  recorder that fell behind, leaves the other checks too little to judge (a window shorter than
  `trend_min_buckets` buckets is not judged).
- `latency_trend`: corrected p95 must not climb. Theil-Sen slope of the per-bucket p95 against
  time, with its rank-based (Kendall) confidence interval; it fails only when the rise over the
  window is, at `trend_confidence`, larger than `max(trend_min_rise_ms, the median p95)`:
  significant *and* large enough to matter, so testbed noise (one slow bucket, a few ms of
  drift) does not fire it.
- `generator_late_share`: the load generator kept its schedule (harness.load.pacing's generator
  lag): at most `max_generator_late_share` of the requests sent late by the generator itself.
- `errors`, `latency`, `kpi`: the baseline within the plan's SLO (when it sets an absolute one;
  errors under `max_error_rate` when it does not),
  and no impact inside it (a run of `impact_buckets` unhealthy buckets under the thresholds
  scoring resolves from this baseline, harness.scoring.health): the same rules that judge the
  fault, with no fault running.

The window is the baseline's closed buckets: those starting at or after the baseline marker and
ending by the engine's check (`CHECK_MARKER`, written to markers.jsonl with the end it judged),
or, in runs written before the check existed, by the fault's start.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from scipy import stats

from harness.phases import Marker
from harness.scoring import health
from harness.scoring.health import HealthPolicy
from harness.timeline import Series

CHECK_MARKER = "baseline_check"
"""The marker kind the engine writes, `t` the end of the window it judged."""
_EPS_S = 1e-9


@dataclass(frozen=True)
class BaselineSettings:
    """How steady a baseline must be; the defaults are argued in docs/scoring.md."""

    require_steady: bool = True
    """Refuse to inject into a baseline that is not steady; False: go on, with the finding on every number."""
    min_load_coverage: float = 0.5
    """The share of the window the timeline must cover. Less, and the load was missing for most of
    the baseline (Locust started late on a starved machine, or its recorder fell behind): the other
    checks would judge a few seconds, and the thresholds derived from it a load still starting. On a
    busy shared machine Locust can start several seconds late; half leaves room for that."""
    max_generator_late_share: float = 0.05
    """Health judges a bucket by its p95, which the slowest 5 % of requests decide: when more than 5 %
    were sent late by the generator itself, the generator (not the service) can set that p95 and the
    load delivered is not the load planned."""
    max_error_rate: float = 0.05
    """Without an error-rate SLO in the plan, the baseline's error rate (its Wilson lower bound)
    must stay under this: a service failing more than one request in 20 with no fault running is
    already in an incident, and thresholds derived from it (twice its rate) would hide most faults."""
    trend_confidence: float = 0.99
    """One-sided confidence that the p95 rose by more than the minimum rise: 1 % false alarms on
    a flat baseline of independent buckets, and the same rule at every baseline length."""
    trend_min_rise_ms: float = 50.0
    trend_min_rise_share: float = 1.0
    """The smallest rise of corrected p95 over the window that fails: max(50 ms, the median p95),
    the margin health puts between a baseline p95 and its derived threshold (max(2 x p95, p95 +
    50 ms)). A larger rise means the baseline's last seconds would be judged unhealthy against its
    own level; a smaller one is jitter on a shared machine or the drift of a warm service (caches,
    a growing database) that does not change what a fault does."""
    trend_min_buckets: int = 5
    """Fewer buckets with latency than this are not judged for a trend: with 5, Kendall's exact
    test can first reach 1 % (1/120)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_load_coverage <= 1.0:
            raise ValueError(f"min_load_coverage must be within [0, 1], got {self.min_load_coverage}")
        if not 0.0 <= self.max_generator_late_share <= 1.0:
            raise ValueError(
                f"max_generator_late_share must be within [0, 1], got {self.max_generator_late_share}"
            )
        if not 0.5 < self.trend_confidence < 1.0:
            raise ValueError(f"trend_confidence must be within (0.5, 1), got {self.trend_confidence}")
        if self.trend_min_rise_ms < 0 or self.trend_min_rise_share < 0:
            raise ValueError("the minimum rise must not be negative")
        if self.trend_min_buckets < 3:
            raise ValueError(f"trend_min_buckets must be at least 3, got {self.trend_min_buckets}")


@dataclass(frozen=True)
class Check:
    """One criterion's outcome: what was measured, the limit, and a sentence saying why."""

    name: str
    passed: bool
    value: float | None
    """None: not judged (too little data), which passes."""
    threshold: float | None
    evidence: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "value": self.value,
            "threshold": self.threshold,
            "evidence": self.evidence,
        }


@dataclass(frozen=True)
class Verdict:
    """All checks of one baseline; steady when every one passed."""

    checks: tuple[Check, ...]

    @property
    def steady(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.passed)

    def to_dict(self, went_on: bool) -> dict[str, Any]:
        """`baseline_check` in scenario.json and result.json; went_on: the fault was injected anyway."""
        return {"steady": self.steady, "went_on": went_on, "checks": [c.to_dict() for c in self.checks]}


def window_from_markers(markers: Sequence[Mapping[str, Any]]) -> tuple[float, float] | None:
    """(start_t, end_t) of the window judged: the baseline marker to the engine's check marker, or
    (older runs) to the first method activity; None when the baseline was never reached."""
    rows = [m for m in markers if isinstance(m, Mapping) and isinstance(m.get("t"), int | float)]
    starts = [float(m["t"]) for m in rows if m.get("kind") == "phase" and m.get("phase") == Marker.BASELINE]
    if not starts:
        return None
    ends = [float(m["t"]) for m in rows if m.get("kind") == CHECK_MARKER]
    if not ends:
        method = [m for m in rows if m.get("kind") == "activity_start" and m.get("section") == "method"]
        actions = [m for m in method if m.get("type") == "action" and not m.get("undo")]
        ends = [float(m["t"]) for m in (actions or method)]
    if not ends:
        return None
    return min(starts), min(ends)


def judge(
    series: Series,
    start_t: float,
    end_t: float,
    policy: HealthPolicy,
    settings: BaselineSettings | None = None,
) -> Verdict:
    """The baseline's verdict over the buckets starting at or after start_t and ending by end_t."""
    settings = settings or BaselineSettings()
    lo = int(np.searchsorted(series.t, start_t - _EPS_S, side="left"))
    hi = max(lo, series.ends_by(end_t + _EPS_S))
    window = series.window_at(lo, hi, start_t)
    limits = health.thresholds(policy, window)
    span = f"{hi - lo} buckets ({window.duration_s:g} s)"
    return Verdict(
        (
            _coverage(series, window.duration_s, start_t, end_t, settings),
            _trend(series, lo, hi, settings, span),
            _generator(series, lo, hi, settings, span),
            _errors(series, lo, hi, policy, limits, settings, span),
            _latency(series, lo, hi, policy, limits, span),
            _kpi(series, lo, hi, limits, span),
        )
    )


def _coverage(
    series: Series, covered_s: float, start_t: float, end_t: float, settings: BaselineSettings
) -> Check:
    """Load ran through most of the window: else it started late, or its recorder fell behind."""
    length_s = max(0.0, end_t - start_t)
    share = covered_s / length_s if length_s > 0 else 1.0
    threshold = settings.min_load_coverage
    evidence = (
        f"the timeline covers {covered_s:g} s of the {length_s:.1f} s baseline window ({100 * share:.0f} %)"
    )
    if length_s < settings.trend_min_buckets * series.bucket_s:
        return Check(
            "load_running", True, round(share, 6), threshold, f"not judged: {evidence}, too short to judge"
        )
    passed = share >= threshold
    if not passed:
        evidence += "; the load started late or its recorder fell behind (a load generator short of CPU)"
    return Check("load_running", passed, round(share, 6), threshold, evidence)


def _trend(series: Series, lo: int, hi: int, settings: BaselineSettings, span: str) -> Check:
    name = "latency_trend"
    p95 = series.latency_corrected.p95_ms[lo:hi]
    keep = ~np.isnan(p95)
    x, y = series.t[lo:hi][keep] - (series.t[lo] if hi > lo else 0.0), p95[keep]
    if y.size < settings.trend_min_buckets or float(np.ptp(x)) <= 0.0:
        return Check(name, True, None, None, f"not judged: {y.size} of {span} had latency, "
                     f"{settings.trend_min_buckets} are needed for a trend")  # fmt: skip
    median = float(np.median(y))
    threshold = max(settings.trend_min_rise_ms, settings.trend_min_rise_share * median)
    two_sided = 2.0 * settings.trend_confidence - 1.0  # its lower bound is the one-sided bound
    slope, _, low, _ = stats.theilslopes(y, x, alpha=two_sided)
    length_s = float(np.ptp(x))
    rise, rise_low = float(slope) * length_s, float(low) * length_s
    passed = not rise_low > threshold
    evidence = (
        f"corrected p95 {'rose' if rise >= 0 else 'fell'} {abs(rise):.0f} ms across {span} (Theil-Sen slope; "
        f"the rise is at least {rise_low:.0f} ms at {100 * settings.trend_confidence:g} % confidence); "
        f"median {median:.0f} ms, and a rise of more than {threshold:.0f} ms is a trend"
    )
    return Check(name, passed, round(rise_low, 3), round(threshold, 3), evidence)


def _generator(series: Series, lo: int, hi: int, settings: BaselineSettings, span: str) -> Check:
    name = "generator_late_share"
    requests = int(series.requests[lo:hi].sum())
    threshold = settings.max_generator_late_share
    if not requests:
        return Check(name, True, None, threshold, f"not judged: no request completed in {span}")
    late = int(series.gen_late[lo:hi].sum())
    share = late / requests
    lag_max = float(series.gen_lag_max_ms[lo:hi].max())
    evidence = (
        f"the load generator sent {late} of {requests} requests late ({100 * share:.1f} %, "
        f"largest lag {lag_max:.0f} ms) in {span}; more than {100 * threshold:g} % means the "
        "generator, not the service, set the latency and the load"
    )
    return Check(name, share <= threshold, round(share, 6), threshold, evidence)


def _errors(
    series: Series,
    lo: int,
    hi: int,
    policy: HealthPolicy,
    limits: health.Thresholds,
    settings: BaselineSettings,
    span: str,
) -> Check:
    only = health.Thresholds(limits.error_rate, None, None, limits.kpi_window_s, limits.min_requests,
                             limits.confidence, limits.impact_buckets)  # fmt: skip
    requests, failures = int(series.requests[lo:hi].sum()), int(series.failures[lo:hi].sum())
    rate = failures / requests if requests else None
    ceiling = policy.error_rate if policy.error_rate is not None else settings.max_error_rate
    over = _lower(failures, requests, limits.confidence) > ceiling
    said = (
        f"{failures} of {requests} requests failed ({100 * (rate or 0.0):.2f} %) in {span}"
        f"{(', above the SLO' if policy.error_rate is not None else ', above the ceiling') if over else ''}"
        f"; a bucket is unhealthy above {100 * limits.error_rate:.2f} %"
    )
    return _judged("errors", series, lo, hi, only, over, rate, ceiling, said, "error rate")


def _latency(
    series: Series, lo: int, hi: int, policy: HealthPolicy, limits: health.Thresholds, span: str
) -> Check:
    name = "latency"
    if limits.p95_ms is None:
        return Check(name, True, None, None, f"not judged: no latency in {span} and no p95 SLO")
    only = health.Thresholds(1.0, limits.p95_ms, None, limits.kpi_window_s, 0, limits.confidence,
                             limits.impact_buckets)  # fmt: skip
    window = series.window_at(lo, hi)
    p95 = window.latency_corrected_ms["p95"]
    over_slo = False
    if policy.p95_ms is not None and window.requests:
        slow = float(series.latency_corrected.above(np.arange(lo, hi), policy.p95_ms).sum())
        over_slo = _lower(slow, window.requests, limits.confidence) > health.P95_SLOW_SHARE
    said = f"corrected p95 {p95 or 0.0:.0f} ms over {span}{', above the SLO' if over_slo else ''}"
    return _judged(
        name, series, lo, hi, only, over_slo, _round(p95, 3), _round(limits.p95_ms, 3), said, "p95"
    )


def _kpi(series: Series, lo: int, hi: int, limits: health.Thresholds, span: str) -> Check:
    name = "kpi"
    duration_s = float(series.dt[lo:hi].sum())
    kpi = int(series.kpi[lo:hi].sum())
    rate = kpi / duration_s if duration_s > 0 else None
    if limits.kpi_min_per_s is None:
        return Check(name, True, _round(rate), None, f"not judged: {kpi} KPI events in {span} are too few "
                     "to judge a drop")  # fmt: skip
    only = health.Thresholds(1.0, None, limits.kpi_min_per_s, limits.kpi_window_s, 0, limits.confidence,
                             limits.impact_buckets)  # fmt: skip
    said = f"{kpi} KPI events in {span} ({rate or 0.0:.2f}/s)"
    return _judged(name, series, lo, hi, only, False, rate, limits.kpi_min_per_s, said, "KPI rate")


def _judged(
    name: str,
    series: Series,
    lo: int,
    hi: int,
    only: health.Thresholds,
    over_slo: bool,
    value: float | None,
    threshold: float | None,
    said: str,
    what: str,
) -> Check:
    """A check that fails over the SLO, or on an impact (a run of unhealthy buckets) inside the window."""
    hit = (
        np.flatnonzero(health.impact(~health.healthy(series, only, lo, hi), only.impact_buckets))
        if hi > lo
        else []
    )
    passed = not over_slo and not len(hit)
    evidence = said
    if len(hit):
        first = float(series.t[lo + hit[0]] - series.t[lo])
        evidence += f"; {len(hit)} buckets in runs of {only.impact_buckets} or more judged unhealthy on {what} " \
                    f"(from {first:g} s into the window)"  # fmt: skip
    evidence += f"; limit {threshold:.6g}" if threshold is not None else ""
    return Check(name, bool(passed), _round(value), _round(threshold), evidence)


def _lower(events: float, trials: int, confidence: float) -> float:
    z = NormalDist().inv_cdf(confidence)
    return float(health.wilson_lower(np.array([events]), np.array([trials]), z)[0])


def _round(value: float | None, digits: int = 6) -> float | None:
    """Rates to 6 decimals, ms to 3, as result.json's metrics."""
    return None if value is None else round(float(value), digits)

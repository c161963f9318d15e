"""Is a bucket healthy? The tolerances, resolved against the baseline, and the per-bucket verdict.

A bucket is healthy when enough requests completed, its error rate and its p95 latency (corrected
for coordinated omission: what users on schedule waited) are within their thresholds, and the KPI
rate over the last few seconds has not dropped too far below the baseline rate. The plan may set
absolute SLOs; what it leaves unset is derived from the baseline window.

A bucket holds a few dozen requests, so one failed or slow request moves its raw error rate or
p95 by whole percentage points. A bucket therefore breaches the error-rate and p95 thresholds only
on evidence: when the one-sided Wilson score interval's lower bound, at the policy's confidence,
for the share of failed (or slower than the p95 threshold) requests lies above the threshold
(above 5 % for p95). And an impact is a run of `impact_buckets` unhealthy buckets in a row
(`impact`): a lone unhealthy bucket is neither an outage's start nor its end.

Called by harness.scoring.metrics (and by the report, to shade unhealthy buckets).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

from harness.result import defaults
from harness.timeline import Series, Window

KPI_MIN_EXPECTED_EVENTS = 3.0
"""Below this many expected KPI events per KPI window, the KPI criterion is skipped: with Poisson
arrivals, a window expecting 3 events is empty about 5 % of the time, so a lower rate would flag
healthy buckets as drops by chance alone."""

CONFIDENCE = defaults.HEALTH_CONFIDENCE
"""How sure the evidence must be that a bucket breaches (harness.result.defaults says why)."""

IMPACT_BUCKETS = defaults.IMPACT_BUCKETS
"""Unhealthy buckets in a row that make an impact (harness.result.defaults says why)."""

P95_SLOW_SHARE = 0.05
"""The p95 threshold, read as a share: a bucket's p95 is above the limit exactly when more than 5 %
of its requests are slower than it."""


@dataclass(frozen=True)
class HealthPolicy:
    """Tolerances for a healthy bucket; None derives the tolerance from the baseline window."""

    error_rate: float | None = None
    """Highest healthy error rate of a bucket. Derived: max(2 x baseline, baseline + 0.01). Doubling
    tolerates the noise of a service that already fails a little; the 1-point floor keeps a clean
    baseline (0 %) from making a single failed request an outage."""
    p95_ms: float | None = None
    """Highest healthy p95 of a bucket, on corrected latency (intended send to response, what users
    feel). Derived: max(2 x baseline p95, baseline p95 + 50 ms). Doubling is clearly felt; the 50 ms
    floor keeps a fast baseline (a few ms) from turning scheduler jitter into an outage."""
    kpi_drop: float | None = None
    """Largest healthy fractional drop of the KPI rate below the baseline KPI rate, judged over the
    last `kpi_window_s`. Derived: 0.5 — half the sign-ups gone is an outage for the business even when
    every request answers 200, and KPI events are too lumpy for a tighter default."""
    kpi_window_s: float = 5.0
    """The KPI is judged over this rolling window ending at the bucket: at one subscription a second,
    a single 1 s bucket is empty a third of the time; five seconds smooths that without hiding an outage."""
    min_requests: int = 1
    """A bucket with fewer completed requests than this is unhealthy: load is running, so a bucket where
    nothing completed is a total stall, the worst case, not missing data."""
    confidence: float = CONFIDENCE
    """How sure the evidence must be that a bucket's error rate (or slow share) is above its threshold
    (module constant CONFIDENCE says why). 0.5 judges the raw rate, as scoring did before evidence."""
    impact_buckets: int = IMPACT_BUCKETS
    """Unhealthy buckets in a row that make an impact (module constant IMPACT_BUCKETS says why).
    1 makes every unhealthy bucket an impact, as scoring did before evidence."""

    def __post_init__(self) -> None:
        if self.error_rate is not None and not 0.0 <= self.error_rate <= 1.0:
            raise ValueError(f"error_rate must be within [0, 1], got {self.error_rate}")
        if self.p95_ms is not None and not self.p95_ms > 0.0:
            raise ValueError(f"p95_ms must be positive, got {self.p95_ms}")
        if self.kpi_drop is not None and not 0.0 <= self.kpi_drop <= 1.0:
            raise ValueError(f"kpi_drop must be within [0, 1], got {self.kpi_drop}")
        if not self.kpi_window_s > 0.0:
            raise ValueError(f"kpi_window_s must be positive, got {self.kpi_window_s}")
        if self.min_requests < 0:
            raise ValueError(f"min_requests must not be negative, got {self.min_requests}")
        _check_evidence(self.confidence, self.impact_buckets)


@dataclass(frozen=True)
class Thresholds:
    """The policy resolved to numbers for one scenario; None means the criterion is not judged."""

    error_rate: float
    p95_ms: float | None
    """None when the plan sets none and the baseline has no latency to derive one from."""
    kpi_min_per_s: float | None
    """Lowest healthy KPI rate over `kpi_window_s`; None when the baseline KPI is too sparse to judge."""
    kpi_window_s: float
    min_requests: int
    confidence: float = CONFIDENCE
    impact_buckets: int = IMPACT_BUCKETS

    def __post_init__(self) -> None:
        _check_evidence(self.confidence, self.impact_buckets)

    def to_dict(self) -> dict[str, Any]:
        return {
            "error_rate": round(self.error_rate, 6),
            "p95_ms": None if self.p95_ms is None else round(self.p95_ms, 3),
            "kpi_min_per_s": None if self.kpi_min_per_s is None else round(self.kpi_min_per_s, 6),
            "kpi_window_s": round(self.kpi_window_s, 3),
            "min_requests": self.min_requests,
            "confidence": round(self.confidence, 6),
            "impact_buckets": self.impact_buckets,
        }


def thresholds(policy: HealthPolicy, baseline: Window) -> Thresholds:
    """The policy's tolerances, with what it leaves unset derived from the baseline window.

    A baseline without requests has no error rate, latency or KPI to derive from: the error rate
    is then derived as from a clean baseline (1 %), p95 and KPI are not judged unless the plan
    sets them (an absolute p95; a KPI drop needs a baseline rate, so it is skipped).
    """
    if policy.error_rate is not None:
        error_rate = policy.error_rate
    else:
        base = baseline.error_rate or 0.0
        error_rate = min(1.0, max(2.0 * base, base + 0.01))
    p95_ms = policy.p95_ms
    base_p95 = baseline.latency_corrected_ms["p95"]
    if p95_ms is None and base_p95 is not None:
        p95_ms = max(2.0 * base_p95, base_p95 + 50.0)
    drop = policy.kpi_drop if policy.kpi_drop is not None else 0.5
    kpi_min_per_s = None
    if baseline.duration_s > 0.0:
        base_rate = baseline.kpi / baseline.duration_s
        if base_rate * policy.kpi_window_s >= KPI_MIN_EXPECTED_EVENTS:
            kpi_min_per_s = base_rate * (1.0 - drop)
    return Thresholds(
        error_rate=error_rate,
        p95_ms=p95_ms,
        kpi_min_per_s=kpi_min_per_s,
        kpi_window_s=policy.kpi_window_s,
        min_requests=policy.min_requests,
        confidence=policy.confidence,
        impact_buckets=policy.impact_buckets,
    )


def healthy(series: Series, limits: Thresholds, lo: int = 0, hi: int | None = None) -> np.ndarray:
    """Per bucket of the series (positions lo to hi): True when healthy under the thresholds.

    Every bucket is judged as if load were running (the scorer only asks about buckets between the
    fault start and the end, when it is). Only the buckets asked and the KPI window before them
    are read, so judging the last minute of a long run costs what a minute costs. Error rate and
    p95 breach only on evidence (`wilson_lower`); a bucket's verdict never depends on its neighbours
    but through the KPI window.
    """
    hi = len(series) if hi is None else hi
    span = max(1, round(limits.kpi_window_s / series.bucket_s))
    first = max(0, lo - span + 1) if limits.kpi_min_per_s is not None else lo
    requests = series.requests[first:hi]
    ok = requests >= limits.min_requests
    z = NormalDist().inv_cdf(limits.confidence)
    ok &= ~(wilson_lower(series.failures[first:hi], requests, z) > limits.error_rate)
    if limits.p95_ms is not None:
        # Only a bucket whose raw p95 is above the limit (more than 5 % slow) can breach: the lower
        # bound never exceeds the raw share. So the bins are read only where the p95 says so.
        # No request is no slow request (NaN): a stall is judged by min_requests.
        over = np.flatnonzero(series.latency_corrected.p95_ms[first:hi] > limits.p95_ms)
        if over.size:
            slow = series.latency_corrected.above(over + first, limits.p95_ms)
            ok[over[wilson_lower(slow, requests[over], z) > P95_SLOW_SHARE]] = False
    if limits.kpi_min_per_s is not None and requests.size:
        ok &= rolling_rate(series.kpi[first:hi], series.bucket_s, limits.kpi_window_s) >= limits.kpi_min_per_s
    return ok[lo - first :]


def wilson_lower(events: np.ndarray, trials: np.ndarray, z: float) -> np.ndarray:
    """Per bucket: the lower bound of the Wilson score interval for events / trials (0 without trials).

    Wilson rather than the normal approximation because it stays inside [0, 1] and is right for
    the small counts and rates near 0 a bucket has: 1 failure of 60 gives 0.004, 1 of 1 gives 0.27
    at z = 1.645 (95 % one-sided). z = 0 gives the raw rate.
    """
    n = np.asarray(trials, dtype=np.float64)
    p = np.divide(events, n, out=np.zeros(n.size), where=n > 0, dtype=np.float64)
    safe = np.where(n > 0, n, 1.0)
    z2 = z * z
    centre = p + z2 / (2.0 * safe)
    margin = z * np.sqrt(np.maximum(p * (1.0 - p) / safe + z2 / (4.0 * safe * safe), 0.0))
    return np.where(n > 0, np.maximum(0.0, (centre - margin) / (1.0 + z2 / safe)), 0.0)


def impact(unhealthy: np.ndarray, run: int) -> np.ndarray:
    """Per bucket: True when it is in a run of at least `run` unhealthy buckets in a row.

    Runs are counted within the array given (the observation): a run cut by its end counts with
    the buckets it has, so a lone bad bucket at the end is no impact, as anywhere else.
    """
    bad = np.asarray(unhealthy, dtype=bool)
    if run <= 1 or not bad.size:
        return bad.copy()
    edges = np.diff(np.concatenate(([0], bad.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = np.zeros(bad.size, dtype=bool)
    for a, b in zip(starts[ends - starts >= run], ends[ends - starts >= run], strict=True):
        out[a:b] = True
    return out


def observed_health(
    series: Series, thresholds: dict[str, Any], start_t: float, end_t: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Per bucket: is it observed (it ends after start_t and by end_t), and is it unhealthy, under
    thresholds as result.json records them (`metrics.thresholds`); None when they are unreadable.

    For the report, which shades what scoring judged: the recorded thresholds are rounded, so they
    differ from scoring's only for a bucket exactly on a limit.
    """
    try:
        limits = Thresholds(
            error_rate=float(thresholds["error_rate"]),
            p95_ms=thresholds.get("p95_ms"),
            kpi_min_per_s=thresholds.get("kpi_min_per_s"),
            kpi_window_s=float(thresholds.get("kpi_window_s", 5.0)),
            min_requests=int(thresholds.get("min_requests", 1)),
            # results written before evidence judged the raw rates: 0.5 is z = 0
            confidence=float(thresholds.get("confidence", 0.5)),
            impact_buckets=int(thresholds.get("impact_buckets", 1)),
        )
    except (KeyError, TypeError, ValueError):
        return None
    ends = series.t + series.dt
    inside = (ends > start_t + 1e-9) & (ends <= end_t + 1e-9)
    return inside, ~healthy(series, limits)


def rolling_rate(counts: np.ndarray, bucket_s: float, window_s: float) -> np.ndarray:
    """Per bucket: events per second over the window of `window_s` ending with that bucket.

    The window is a whole number of buckets (at least one); near the start it holds the buckets there are.
    """
    n = max(1, round(window_s / bucket_s))
    cum = np.concatenate(([0], np.cumsum(counts, dtype=np.int64)))
    ends = np.arange(1, counts.size + 1)
    starts = np.maximum(ends - n, 0)
    return (cum[ends] - cum[starts]) / ((ends - starts) * bucket_s)


def _check_evidence(confidence: float, impact_buckets: int) -> None:
    if not 0.5 <= confidence < 1.0:
        raise ValueError(f"confidence must be within [0.5, 1), got {confidence}")
    if impact_buckets < 1:
        raise ValueError(f"impact_buckets must be at least 1, got {impact_buckets}")

"""Is a bucket healthy? The tolerances, resolved against the baseline, and the per-bucket verdict.

A bucket is healthy when enough requests completed, its error rate and its p95 latency (corrected
for coordinated omission: what users on schedule waited) are within their thresholds, and the KPI
rate over the last few seconds has not dropped too far below the baseline rate. The plan may set
absolute SLOs; what it leaves unset is derived from the baseline window.

A bucket holds a few dozen requests, so one failed or slow request moves its raw error rate or
p95 by whole percentage points. A bucket therefore breaches the error-rate and p95 thresholds only
on evidence: when the one-sided Wilson score interval's lower bound, at the policy's confidence,
for the share of failed (or slower than the p95 threshold) requests lies above the threshold
(above 5 % for p95). A sustained moderate fault gives no one bucket that evidence, so it is also
pooled: `impact_buckets` buckets in a row, each over the threshold on its raw share, are all
unhealthy when their summed counts give it. And an impact is a run of `impact_buckets`
unhealthy buckets in a row (`impact`): a lone unhealthy bucket is neither an outage's start nor
its end.

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

_Shares = list[tuple[np.ndarray, np.ndarray, float]]
"""Per share judged (errors, slow): per bucket its events and whether its raw share is over the
threshold, and the threshold."""

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
    confidence: float = defaults.HEALTH_CONFIDENCE
    """How sure the evidence must be that a bucket's error rate (or slow share) is above its threshold
    (harness.result.defaults says why). 0.5 judges the raw rate, as scoring did before evidence."""
    impact_buckets: int = defaults.IMPACT_BUCKETS
    """Unhealthy buckets in a row that make an impact (harness.result.defaults says why).
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
    confidence: float = defaults.HEALTH_CONFIDENCE
    impact_buckets: int = defaults.IMPACT_BUCKETS

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

    A bucket is unhealthy when it is unhealthy alone (`_alone`: a stall, a KPI drop, or its own
    Wilson evidence of an error rate or slow share over the threshold), or when it lies in a
    breaching run (`_breaching`): `impact_buckets` buckets in a row, each unhealthy alone or over
    the threshold on its raw rate, whose pooled counts give the evidence one bucket alone lacks.

    Only runs inside lo..hi are judged (the observation: the baseline's noise neither starts nor
    extends an impact). So a bucket's verdict is a function of the buckets from k - 1 before it to
    k - 1 after it (k = `impact_buckets`), clipped to lo..hi, and of the KPI window before those;
    re-judging buckets a..b asks for max(lo, a - k + 1)..min(hi, b + k - 1) and keeps a..b, and a
    bucket's verdict can change until k - 1 buckets after it have closed. Every bucket is judged
    as if load were running (the scorer only asks about buckets between the fault start and the
    end, when it is).
    """
    hi = len(series) if hi is None else hi
    bad, shares = _alone(series, limits, lo, hi)
    return ~(bad | _breaching(bad, shares, series.requests[lo:hi], limits))


def _alone(series: Series, limits: Thresholds, lo: int, hi: int) -> tuple[np.ndarray, _Shares]:
    """Per bucket lo..hi: unhealthy on its own; and per share judged (errors, slow): its events,
    whether each bucket's raw share is over the threshold, and the threshold.

    Only the buckets asked and the KPI window before them are read, so judging the last minute of
    a long run costs what a minute costs.
    """
    span = max(1, round(limits.kpi_window_s / series.bucket_s))
    first = max(0, lo - span + 1) if limits.kpi_min_per_s is not None else lo
    requests = series.requests[first:hi]
    ok = requests >= limits.min_requests
    z = NormalDist().inv_cdf(limits.confidence)
    if limits.kpi_min_per_s is not None and requests.size:
        ok &= rolling_rate(series.kpi[first:hi], series.bucket_s, limits.kpi_window_s) >= limits.kpi_min_per_s
    ok, requests = ok[lo - first :], requests[lo - first :]
    failures = series.failures[lo:hi]
    ok &= ~(wilson_lower(failures, requests, z) > limits.error_rate)
    raw = np.divide(failures, requests, out=np.zeros(requests.size), where=requests > 0, dtype=np.float64)
    shares = [(failures, raw > limits.error_rate, limits.error_rate)]
    if limits.p95_ms is not None:
        # A bucket's raw p95 is above the limit exactly when more than 5 % of it is slow, and the
        # lower bound never exceeds the raw share: so only those buckets can breach alone, and
        # only they and buckets already unhealthy can join a breaching run. Their bins alone are
        # read. No request is no slow request (NaN): a stall is judged by min_requests.
        over = series.latency_corrected.p95_ms[lo:hi] > limits.p95_ms
        slow = np.zeros(requests.size)
        read = np.flatnonzero(over | (~ok & (requests > 0)))
        if read.size:
            slow[read] = series.latency_corrected.above(read + lo, limits.p95_ms)
        ok &= ~(over & (wilson_lower(slow, requests, z) > P95_SLOW_SHARE))
        shares.append((slow, over, P95_SLOW_SHARE))
    return ~ok, shares


def _breaching(bad: np.ndarray, shares: _Shares, requests: np.ndarray, limits: Thresholds) -> np.ndarray:
    """Per bucket: True when it lies in a breaching run of `impact_buckets` buckets in a row.

    A run breaches a share's threshold when every bucket of it is unhealthy alone or over that
    threshold on its raw share, and the Wilson lower bound of the run's pooled events / requests
    is above it. Pooling finds a sustained moderate fault (3 of 25 slow a second is no evidence,
    9 of 75 is); asking every bucket to lean over keeps one bad bucket from carrying clean
    neighbours into an impact, and a clean bucket beside an outage out of it. A run of buckets
    each unhealthy alone breaches as it is (stalls have no counts to pool).
    """
    k = limits.impact_buckets
    if k <= 1 or bad.size < k:
        return np.zeros(bad.size, dtype=bool)  # one bucket's pooled evidence is its own: judged alone
    z = NormalDist().inv_cdf(limits.confidence)
    starts = _all_of(bad, k)
    n = _sum_of(requests, k)
    for events, over, threshold in shares:
        starts |= _all_of(bad | over, k) & (wilson_lower(_sum_of(events, k), n, z) > threshold)
    cover = np.convolve(starts.astype(np.int64), np.ones(k, dtype=np.int64))
    return cover > 0


def _sum_of(values: np.ndarray, k: int) -> np.ndarray:
    """Per run of k in a row (by its first position): the sum of values over it."""
    cum = np.concatenate(([0], np.cumsum(values, dtype=np.float64)))
    return cum[k:] - cum[:-k]


def _all_of(flags: np.ndarray, k: int) -> np.ndarray:
    """Per run of k in a row (by its first position): True when every flag in it is."""
    return _sum_of(flags.astype(np.int64), k) >= k


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
    unhealthy = np.zeros(len(series), dtype=bool)
    at = np.flatnonzero(inside)
    if at.size:  # the observation is judged on its own, as scoring judges it
        unhealthy[at[0] : at[-1] + 1] = ~healthy(series, limits, int(at[0]), int(at[-1]) + 1)
    return inside, unhealthy


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

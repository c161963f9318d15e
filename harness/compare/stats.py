"""Medians, bootstrap intervals and Mann-Whitney tests for comparing trials of two sides (pure).

`runs.py` calls `summarize` per side and `compare` per other side against the baseline. Values
are floats, or None for a trial whose value lies beyond anything measured: a scenario that
did not recover within the observation window (recovery_time_s is null), or that showed no
impact at all (time_to_impact_s is null). Such a trial is right-censored: it ranks above every
measured value and counts as +inf in medians and tests, and an interval bound that reaches it
is "unbounded" (None) rather than a made-up number.

Randomness comes from a fixed seed, so the same inputs always give the same report.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import stats

from harness.result import metrics as metric_registry

SEED = 20261127
"""Seed of every bootstrap; a fresh generator per call, so results do not depend on call order."""

N_RESAMPLES = 9999
"""scipy's default: enough that a 95 % interval's bounds move by well under 1 % between seeds."""

EXACT_MAX_N = 30
"""Largest sample for the exact Mann-Whitney distribution; scipy computes it quickly up to here."""


Better = metric_registry.Better
"""Which direction of a metric is good: the registry's, so a metric's direction is said once."""


class Verdict(StrEnum):
    """What a comparison concludes; values are slugs for data attributes and CSS classes."""

    BETTER = "better"
    WORSE = "worse"
    NO_DIFFERENCE = "no-difference"
    TOO_FEW = "too-few-trials"
    NO_DATA = "no-data"

    @property
    def words(self) -> str:
        """The verdict as a reader sees it, so that colour is never the only signal."""
        return {
            Verdict.BETTER: "better",
            Verdict.WORSE: "worse",
            Verdict.NO_DIFFERENCE: "no significant difference",
            Verdict.TOO_FEW: "too few trials",
            Verdict.NO_DATA: "no data",
        }[self]


@dataclass(frozen=True)
class Summary:
    """One side's trials of one metric: the median and its bootstrap interval."""

    values: tuple[float | None, ...]
    """The trials as given; None is censored (beyond every measured value)."""
    median: float | None
    """None when there is no trial, or when more than half are censored (did not recover)."""
    median_is_bound: bool
    """Exactly half the trials are censored: the median is at least `median` (a lower bound)."""
    ci_low: float | None
    ci_high: float | None
    """The interval; None with fewer than 2 trials. A None bound next to a number is unbounded."""
    ci_method: str | None
    """"BCa", "percentile" (censored or degenerate data), "constant" (all trials equal) or
    "censored" (every trial censored: both bounds None, beyond anything observed)."""
    confidence: float

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def measured(self) -> tuple[float, ...]:
        return tuple(v for v in self.values if v is not None)

    @property
    def censored(self) -> int:
        """How many trials are censored, e.g. did not recover within the observation window."""
        return sum(v is None for v in self.values)

    @property
    def median_censored(self) -> bool:
        """More than half the trials are censored: the median itself did not recover."""
        return self.n > 0 and 2 * self.censored > self.n

    @property
    def has_interval(self) -> bool:
        return self.ci_method is not None


@dataclass(frozen=True)
class Comparison:
    """One other side against the baseline for one metric."""

    diff: float | None
    """median(other) - median(baseline); None when a median is missing or censored."""
    relative: float | None
    """diff / |median(baseline)|; None when the baseline median is 0 or not a number."""
    diff_ci_low: float | None
    diff_ci_high: float | None
    """Bootstrap interval of the difference of medians; None when censored or too few trials."""
    p_value: float | None
    """Two-sided Mann-Whitney U p-value; None when no test was possible or meaningful."""
    method: str | None
    """"exact" or "asymptotic" (scipy's choice with ties or large samples); None without a test."""
    verdict: Verdict
    reason: str
    """Why the verdict, in words: the p-value against alpha, or why there is no test."""


# --- trials needed ------------------------------------------------------------------------


def min_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided p-value the exact Mann-Whitney test can give for n1 vs n2 trials.

    Reached by perfectly separated samples; computed from scipy's exact distribution (it
    equals 2 / C(n1 + n2, n1), capped at 1)."""
    if n1 < 1 or n2 < 1:
        return 1.0
    separated = stats.mannwhitneyu(np.arange(n1), np.arange(n1, n1 + n2), method="exact")
    return float(separated.pvalue)


def min_trials_for(alpha: float, limit: int = 100) -> int:
    """The fewest trials per side (equal sides) with which the exact test can reach p < alpha."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    for n in range(1, limit + 1):
        if min_p_value(n, n) < alpha:
            return n
    raise ValueError(f"alpha {alpha} needs more than {limit} trials per side")


# --- summaries ----------------------------------------------------------------------------


def _as_array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.inf if v is None else float(v) for v in values], dtype=float)


def _censored_median(array: np.ndarray) -> tuple[float | None, bool]:
    """The median and whether it is only a lower bound; None when more than half are censored."""
    n, censored = len(array), int(np.isinf(array).sum())
    if n == 0 or 2 * censored > n:
        return None, False
    if 2 * censored == n:
        # The middle pair is (largest measured, censored): the median is at least the former.
        return float(np.max(array[~np.isinf(array)])), True
    return float(np.median(array)), False


def _bootstrap(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., Any],
    confidence: float,
    method: str,
) -> tuple[float, float, str] | None:
    """scipy's bootstrap interval; BCa first, percentile when BCa cannot work.

    BCa needs a spread in the jackknife and bootstrap distributions; on tied or tiny samples
    scipy warns (DegenerateDataWarning, divide by zero) and returns nan. Those warnings are
    caught here, for this call only, and answered with the percentile interval on the same
    seed, which is always defined for a median."""
    for attempt in ("BCa", "percentile") if method == "BCa" else (method,):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = stats.bootstrap(
                data,
                statistic,
                n_resamples=N_RESAMPLES,
                vectorized=True,
                confidence_level=confidence,
                method=attempt,
                rng=np.random.default_rng(SEED),
            )
        low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
        if not caught and not math.isnan(low) and not math.isnan(high):
            return low, high, attempt
    return None


def summarize(values: Sequence[float | None], confidence: float = 0.95) -> Summary:
    """The median of the trials and its bootstrap confidence interval (seeded, reproducible)."""
    values = tuple(values)
    n = len(values)
    array = _as_array(values)
    censored = int(np.isinf(array).sum())
    median, is_bound = _censored_median(array)
    low: float | None = None
    high: float | None = None
    ci_method: str | None = None
    if n >= 2:
        measured = array[~np.isinf(array)]
        if censored == 0 and np.all(array == array[0]):
            low = high = float(array[0])
            ci_method = "constant"
        elif censored == n:
            ci_method = "censored"  # every trial censored: so is the whole interval
        elif censored == 0:
            interval = _bootstrap((array,), np.median, confidence, "BCa")
            if interval is None:  # not reached with a median, kept as a defined answer
                low, high, ci_method = float(array.min()), float(array.max()), "range"
            else:
                low, high, ci_method = interval
        else:
            # Censored trials stand in as a value above every measured one; a bound above the
            # largest measured value then means "beyond what was observed": unbounded (None).
            top = float(measured.max())
            sentinel = top + max(1.0, abs(top))
            stand_in = np.where(np.isinf(array), sentinel, array)
            interval = _bootstrap((stand_in,), np.median, confidence, "percentile")
            if interval is not None:
                lo, hi, ci_method = interval
                low = lo if lo <= top else None
                high = hi if hi <= top else None
    return Summary(
        values=values,
        median=median,
        median_is_bound=is_bound,
        ci_low=low,
        ci_high=high,
        ci_method=ci_method,
        confidence=confidence,
    )


# --- comparisons --------------------------------------------------------------------------


def _median_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(y, axis=axis) - np.median(x, axis=axis)


def _fmt_p(p: float) -> str:
    return f"{p:.3g}" if p >= 0.001 else f"{p:.1e}"


def compare(
    baseline_values: Sequence[float | None],
    other_values: Sequence[float | None],
    better: Better | str = Better.LOWER,
    alpha: float = 0.05,
    confidence: float = 0.95,
) -> Comparison:
    """The other side against the baseline: difference of medians, Mann-Whitney p, verdict."""
    better = Better(better)
    x, y = _as_array(baseline_values), _as_array(other_values)
    n1, n2 = len(x), len(y)
    (base, base_bound), (other, other_bound) = _censored_median(x), _censored_median(y)

    diff: float | None = None
    relative: float | None = None
    if base is not None and other is not None and not base_bound and not other_bound:
        diff = other - base
        if base != 0:
            relative = diff / abs(base)
    diff_low: float | None = None
    diff_high: float | None = None
    if n1 >= 2 and n2 >= 2 and not np.isinf(x).any() and not np.isinf(y).any():
        if np.all(x == x[0]) and np.all(y == y[0]):
            diff_low = diff_high = float(y[0] - x[0])
        else:
            interval = _bootstrap((x, y), _median_difference, confidence, "BCa")
            if interval is not None:
                diff_low, diff_high, _ = interval

    def result(
        verdict: Verdict, reason: str, p: float | None = None, method: str | None = None
    ) -> Comparison:
        return Comparison(diff, relative, diff_low, diff_high, p, method, verdict, reason)

    if n1 == 0 or n2 == 0:
        return result(Verdict.NO_DATA, "no measured trial on " + ("either side" if n1 == n2 else "one side"))
    if min_p_value(n1, n2) >= alpha:
        need = min_trials_for(alpha)
        return result(
            Verdict.TOO_FEW,
            f"too few trials ({n1} vs {n2}): need at least {need} per side for p < {alpha:g}",
        )
    pooled = np.concatenate([x, y])
    if np.all(pooled == pooled[0]):
        # Every rank is tied: no test can tell the sides apart, and scipy's asymptotic
        # variance would be zero (a division by zero), so answer directly.
        same = "did not get a value (all censored)" if np.isinf(pooled[0]) else "gave the same value"
        return result(Verdict.NO_DIFFERENCE, f"every trial on both sides {same}", 1.0, None)

    ties = len(np.unique(pooled)) < len(pooled)
    method = "exact" if not ties and max(n1, n2) <= EXACT_MAX_N else "auto"
    test = stats.mannwhitneyu(y, x, alternative="two-sided", method=method)
    p = float(test.pvalue)
    # scipy's "auto" takes the exact distribution only without ties and with a side of 8 or fewer.
    used = "exact" if not ties and (method == "exact" or min(n1, n2) <= 8) else "asymptotic"
    if p >= alpha:
        return result(Verdict.NO_DIFFERENCE, f"p = {_fmt_p(p)} ≥ {alpha:g}", p, used)
    # U counts pairs where the other side is larger: above half of all pairs, it is larger.
    other_larger = float(test.statistic) > n1 * n2 / 2
    good = (better is Better.HIGHER) == other_larger
    direction = f"{better.value} is better"
    return result(
        Verdict.BETTER if good else Verdict.WORSE, f"p = {_fmt_p(p)} < {alpha:g}; {direction}", p, used
    )

"""Exact rank tests, Hodges-Lehmann shifts and order-statistic intervals for two sides (pure).

`runs.py` calls `summarize` per side and `compare` per other side against the baseline, then
`adjust` for the page's multiple comparisons. Values are floats; a censored trial (an outcome
beyond anything measured) is +inf or -inf in the value's own scale: a scenario that did not
recover is +inf seconds, one whose fault had no impact has -inf fault latency. None is read as
+inf, the older spelling of "did not recover". Censored values rank beyond every measured one
and tie with each other; an interval bound that reaches one is unbounded (None).

Why these methods (docs/compare.md, "What the statistics mean"): with 3 to 10 trials a side,
normal approximations and the bootstrap are wrong by more than the effects looked for. The
rank test here is an exact permutation test (ties included: midranks, every arrangement
enumerated); the shift is the Hodges-Lehmann estimate with the Moses interval that inverts
the same test; the median's interval comes from the binomial distribution of order statistics.
Each interval carries its true level, which at these sizes is not the level asked for.
Above EXACT_MAX_N trials in a stratum a seeded Monte Carlo replaces the exact count.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

from harness.result import metrics as metric_registry

SEED = 20261127
"""Seed of the Monte Carlo fallback; a fresh generator per call, so results do not depend on call order."""

EXACT_MAX_N = 60
"""Trials in a stratum (both sides) up to which the permutation distribution is computed
exactly; every comparison the harness runs (at most 100 trials a scenario, usually 3 to 20)
up to 30 a side. Above it, MONTE_CARLO_PERMUTATIONS random relabellings."""

MONTE_CARLO_PERMUTATIONS = 20_000
"""Monte Carlo error of a p-value near 0.05 is then about 0.0015 (one standard error)."""

EXACT_U_MAX = 50
"""Largest side for the exact Mann-Whitney distribution behind the Moses interval and min_p."""

POWER = 0.8
"""The power `trials_needed` plans for: the conventional 80 %."""


Better = metric_registry.Better
"""Which direction of a metric is good: the registry's, so a metric's direction is said once."""


class Verdict(StrEnum):
    """What a comparison concludes; values are slugs for data attributes and CSS classes."""

    BETTER = "better"
    WORSE = "worse"
    EQUIVALENT = "equivalent"
    INCONCLUSIVE = "inconclusive"
    TOO_FEW = "too-few-trials"
    NO_VERDICT = "no-verdict"
    NO_DATA = "no-data"

    @property
    def words(self) -> str:
        """The verdict as a reader sees it, so that colour is never the only signal."""
        return {
            Verdict.BETTER: "better",
            Verdict.WORSE: "worse",
            Verdict.EQUIVALENT: "equivalent",
            Verdict.INCONCLUSIVE: "inconclusive",
            Verdict.TOO_FEW: "too few trials",
            Verdict.NO_VERDICT: "no verdict",
            Verdict.NO_DATA: "no data",
        }[self]


# --- values -------------------------------------------------------------------------------


def _as_array(values: Sequence[float | None]) -> np.ndarray:
    return np.array([math.inf if v is None else float(v) for v in values], dtype=float)


def _finite_or_none(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


# --- medians ------------------------------------------------------------------------------


def median_interval_ranks(n: int, confidence: float) -> tuple[int, int, float]:
    """1-based ranks (l, u) of the order-statistic interval of a median and its true level.

    [x(l), x(n+1-l)] covers the population median with probability 1 - 2 P(B <= l - 1),
    B ~ Binomial(n, 1/2), for any continuous distribution. The narrowest such interval with at
    least `confidence` is chosen; when even the range falls short (n <= 5 at 95 %), the range,
    with its lower level."""
    if n < 2:
        raise ValueError("an interval needs at least 2 values")
    best = (1, n, 1 - 2 * float(stats.binom.cdf(0, n, 0.5)))
    for low in range(2, (n + 1) // 2 + 1):
        level = 1 - 2 * float(stats.binom.cdf(low - 1, n, 0.5))
        if level < confidence:
            break
        best = (low, n + 1 - low, level)
    return best


@dataclass(frozen=True)
class Summary:
    """One side's trials of one metric: the median and its exact order-statistic interval."""

    values: tuple[float, ...]
    """The trials, censored ones as +inf or -inf."""
    median: float | None
    """None when there is no trial, or when more than half are censored (e.g. did not recover)."""
    median_is_bound: bool
    """Exactly half the trials are censored: the median is only bounded by `median`
    (at least it, when the censored trials are above; at most, when below)."""
    ci_low: float | None
    ci_high: float | None
    """The interval; None with fewer than 2 trials. A None bound next to a number is unbounded."""
    ci_method: str | None
    """"order statistics", "constant" (all trials equal) or "censored" (every trial censored)."""
    ci_level: float | None
    """The interval's true coverage (0.9375 for 5 trials: the range), not the level asked for."""
    confidence: float

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def measured(self) -> tuple[float, ...]:
        return tuple(v for v in self.values if math.isfinite(v))

    @property
    def censored(self) -> int:
        """How many trials are censored, e.g. did not recover within the observation window."""
        return sum(not math.isfinite(v) for v in self.values)

    @property
    def censored_low(self) -> bool:
        """The censored trials lie below every measured one (-inf, e.g. no impact on latency)."""
        return any(v == -math.inf for v in self.values)

    @property
    def median_censored(self) -> bool:
        """More than half the trials are censored: the median itself is beyond what was measured."""
        return self.n > 0 and 2 * self.censored > self.n

    @property
    def has_interval(self) -> bool:
        return self.ci_method is not None


def _censored_median(array: np.ndarray) -> tuple[float | None, bool]:
    """The median and whether it is only a bound; None when more than half are censored."""
    n = len(array)
    if n == 0:
        return None, False
    ordered = np.sort(array)
    low, high = ordered[(n - 1) // 2], ordered[n // 2]
    if math.isfinite(low) and math.isfinite(high):
        return float((low + high) / 2), False
    if math.isfinite(low) or math.isfinite(high):
        return float(low if math.isfinite(low) else high), True
    return None, False


def summarize(values: Sequence[float | None], confidence: float = 0.95) -> Summary:
    """The median of the trials and its exact order-statistic interval (binomial, distribution-free)."""
    array = _as_array(values)
    n = len(array)
    median, is_bound = _censored_median(array)
    low: float | None = None
    high: float | None = None
    method: str | None = None
    level: float | None = None
    if n >= 2:
        ordered = np.sort(array)
        lo_rank, hi_rank, level = median_interval_ranks(n, confidence)
        if not np.isfinite(array).any():
            method = "censored"  # every trial censored: so is the whole interval
        elif np.all(array == array[0]):
            low = high = float(array[0])
            method = "constant"
        else:
            low, high = _finite_or_none(ordered[lo_rank - 1]), _finite_or_none(ordered[hi_rank - 1])
            method = "order statistics"
    return Summary(tuple(float(v) for v in array), median, is_bound, low, high, method, level, confidence)


# --- the exact rank test ------------------------------------------------------------------


@dataclass(frozen=True)
class RankTest:
    """A two-sided stratified rank-sum permutation test of the other side against the baseline."""

    p_value: float
    min_p: float
    """The smallest p-value this design (sizes, strata) could give at all: complete separation."""
    method: str
    """"exact" (every arrangement) or "Monte Carlo (N permutations)"."""
    other_larger: bool
    """The other side ranks above the baseline (its weighted rank sum above expectation)."""
    strata: int


@functools.lru_cache(maxsize=4096)
def _stratum_sums(ranks: tuple[float, ...], m: int, weight: float) -> dict[float, int] | None:
    """How many ways each weighted rank sum of m of these ranks arises; None above EXACT_MAX_N.

    A dynamic programme over doubled midranks (integers, ties included): counts[k, s] is the
    number of k-subsets whose doubled ranks sum to s; exactly every arrangement, without
    listing them. Cached: without ties the ranks are 1…n whatever the data. Callers must not
    change the dict."""
    if len(ranks) > EXACT_MAX_N:
        return None
    doubled = [round(2 * r) for r in ranks]
    top = sum(sorted(doubled)[-m:]) if m else 0
    counts = np.zeros((m + 1, top + 1))
    counts[0, 0] = 1.0
    for r in doubled:
        grown = counts.copy()
        if r <= top:
            grown[1:, r:] += counts[:-1, : top + 1 - r]
        counts = grown
    return {round(weight * s / 2, 9): int(c) for s, c in enumerate(counts[m]) if c}


def _convolve(a: dict[float, int], b: dict[float, int]) -> dict[float, int]:
    out: dict[float, int] = {}
    for ka, ca in a.items():
        for kb, cb in b.items():
            key = round(ka + kb, 9)
            out[key] = out.get(key, 0) + ca * cb
    return out


def _two_sided(distribution: dict[float, int], observed: float, expected: float) -> float:
    total = sum(distribution.values())
    distance = abs(observed - expected) - 1e-9
    return sum(c for k, c in distribution.items() if abs(k - expected) >= distance) / total


def _strata_of(
    x: np.ndarray, y: np.ndarray, x_strata: Sequence[object] | None, y_strata: Sequence[object] | None
) -> list[tuple[np.ndarray, np.ndarray]]:
    if x_strata is None or y_strata is None:
        return [(x, y)]
    keys = list(dict.fromkeys([*x_strata, *y_strata]))
    out = []
    for key in keys:
        xs = x[[s == key for s in x_strata]] if len(x) else x
        ys = y[[s == key for s in y_strata]] if len(y) else y
        if len(xs) and len(ys):  # a stratum with one side only says nothing about the difference
            out.append((xs, ys))
    return out


def rank_test(
    baseline: Sequence[float | None],
    other: Sequence[float | None],
    baseline_strata: Sequence[object] | None = None,
    other_strata: Sequence[object] | None = None,
) -> RankTest | None:
    """Van Elteren's stratified rank-sum test, exact by enumeration (Wilcoxon-Mann-Whitney for one stratum).

    Within each stratum the pooled values get midranks (ties, censored values tied at their
    end); the statistic is the other side's rank sums weighted 1/(n_s + 1), van Elteren's
    weights. Its null distribution counts every within-stratum relabelling and is convolved
    across strata, so ties get the exact p, not the normal approximation. None when
    no stratum holds both sides."""
    x, y = _as_array(baseline), _as_array(other)
    strata = _strata_of(x, y, baseline_strata, other_strata)
    if not strata:
        return None
    observed = expected = 0.0
    exact: dict[float, int] | None = {0.0: 1}
    untied: dict[float, int] | None = {0.0: 1}
    pieces: list[tuple[np.ndarray, int, float]] = []
    for xs, ys in strata:
        pooled = np.concatenate([xs, ys])
        n, m = len(pooled), len(ys)
        weight = 1.0 / (n + 1)
        ranks = stats.rankdata(np.where(np.isnan(pooled), 0.0, pooled))
        observed += weight * float(ranks[len(xs) :].sum())
        expected += weight * m * (n + 1) / 2
        pieces.append((ranks, m, weight))
        sums = _stratum_sums(tuple(ranks.tolist()), m, weight)
        exact = _convolve(exact, sums) if exact is not None and sums is not None else None
        plain = _stratum_sums(tuple(np.arange(1.0, n + 1).tolist()), m, weight)
        untied = _convolve(untied, plain) if untied is not None and plain is not None else None
    if exact is not None and untied is not None:
        p = _two_sided(exact, observed, expected)
        extreme = max(abs(k - expected) for k in untied)
        min_p = _two_sided(untied, expected + extreme, expected)
        method = "exact"
    else:
        rng = np.random.default_rng(SEED)
        draws = np.zeros(MONTE_CARLO_PERMUTATIONS)
        for ranks, m, weight in pieces:
            shuffled = rng.permuted(np.tile(ranks, (MONTE_CARLO_PERMUTATIONS, 1)), axis=1)
            draws += weight * shuffled[:, len(ranks) - m :].sum(axis=1)
        hits = int((np.abs(draws - expected) >= abs(observed - expected) - 1e-9).sum())
        p = (1 + hits) / (1 + MONTE_CARLO_PERMUTATIONS)
        min_p = 1 / (1 + MONTE_CARLO_PERMUTATIONS)
        method = f"Monte Carlo ({MONTE_CARLO_PERMUTATIONS:,} permutations)"
    return RankTest(min(1.0, p), min(1.0, min_p), method, observed > expected + 1e-9, len(strata))


def min_p_value(n1: int, n2: int) -> float:
    """The smallest two-sided p-value the exact rank-sum test can give for n1 vs n2 trials: 2 / C(n1 + n2, n1)."""
    if n1 < 1 or n2 < 1:
        return 1.0
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def min_trials_for(alpha: float, limit: int = 100) -> int:
    """The fewest trials per side (equal sides) with which the exact test can reach p < alpha."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, not {alpha}")
    for n in range(1, limit + 1):
        if min_p_value(n, n) < alpha:
            return n
    raise ValueError(f"alpha {alpha} needs more than {limit} trials per side")


# --- the shift and its interval -----------------------------------------------------------


@functools.cache
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many arrangements give each Mann-Whitney U = 0 … m·n (no ties); the q-binomial recursion."""
    if m == 0 or n == 0:
        return (1,)
    out = [0] * (m * n + 1)
    for u, count in enumerate(_u_counts(m - 1, n)):
        out[u + n] += count
    for u, count in enumerate(_u_counts(m, n - 1)):
        out[u] += count
    return tuple(out)


def _u_lower(m: int, n: int, tail: float) -> tuple[int, float]:
    """The largest c with P(U <= c) <= tail, and that probability; (-1, 0) when even U = 0 exceeds it."""
    if max(m, n) <= EXACT_U_MAX:
        counts = _u_counts(min(m, n), max(m, n))
        total = math.comb(m + n, m)
        cumulative = 0
        for c, count in enumerate(counts):
            if (cumulative + count) / total > tail:
                return c - 1, cumulative / total
            cumulative += count
        return len(counts) - 1, 1.0
    mean, sd = m * n / 2, math.sqrt(m * n * (m + n + 1) / 12)
    c = math.floor(mean + sd * float(stats.norm.ppf(tail)) - 0.5)
    return c, float(stats.norm.cdf((c + 0.5 - mean) / sd))


@dataclass(frozen=True)
class Shift:
    """The Hodges-Lehmann shift (other minus baseline) and its exact Moses interval."""

    estimate: float | None
    """The median of all pairwise differences; None when it is a censored (infinite) value."""
    low: float | None
    high: float | None
    """None: unbounded (the bound reaches a censored difference) or no interval (too few trials)."""
    level: float | None
    """The interval's true level: 1 - 2 P(U <= c) from the exact Mann-Whitney distribution."""


def _pairwise(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        diffs = (y[None, :] - x[:, None]).ravel()
    return np.sort(np.where(np.isnan(diffs), 0.0, diffs))  # two censored trials tie: no difference


def hodges_lehmann(
    baseline: Sequence[float | None], other: Sequence[float | None], confidence: float = 0.95
) -> Shift:
    """Other minus baseline as the Hodges-Lehmann estimate, with the distribution-free Moses interval.

    The interval [d(c+1), d(mn-c)] of the sorted pairwise differences is the set of shifts the
    rank-sum test would not reject; c comes from the exact null distribution of U, so its
    level is exact without ties (conservative with them)."""
    x, y = _as_array(baseline), _as_array(other)
    m, n = len(x), len(y)
    if m == 0 or n == 0:
        return Shift(None, None, None, None)
    diffs = _pairwise(x, y)
    estimate = _finite_or_none(float(np.median(diffs))) if not np.isnan(np.median(diffs)) else None
    c, tail = _u_lower(m, n, (1 - confidence) / 2)
    if c < 0:
        return Shift(estimate, None, None, None)
    low, high = diffs[c], diffs[m * n - 1 - c]
    return Shift(estimate, _finite_or_none(low), _finite_or_none(high), 1 - 2 * tail)


# --- trials needed ------------------------------------------------------------------------


def spread(*sides: Sequence[float | None]) -> float | None:
    """A robust standard deviation of the trials around their side's median (MAD times 1.4826).

    Censored trials are left out: they say where a trial lies, not how far."""
    residuals = []
    for side in sides:
        measured = np.array([v for v in _as_array(side) if math.isfinite(v)])
        if len(measured) >= 2:
            residuals.extend((measured - np.median(measured)).tolist())
    if len(residuals) < 3:
        return None
    mad = float(np.median(np.abs(residuals))) * 1.4826
    if mad == 0:
        sd = float(np.std(residuals, ddof=1))
        return sd or None
    return mad


def trials_needed(
    margin: float, sd: float, level: float, power: float = POWER, limit: int = 1000
) -> int | None:
    """Trials per side for the rank-sum test to detect a shift of `margin` with `power` at `level`.

    Noether's approximation (JASA 1987) for equal sides: N = (z(1 - level/2) + z(power))² /
    (3 (p - 1/2)²) trials in all, with p = P(Y > X) = Φ(margin / (sd √2)) for normal trials of
    standard deviation sd; never below the fewest trials with which the exact test can reach
    `level`. None when the spread is unknown or the answer exceeds `limit`."""
    if sd <= 0 or margin <= 0:
        return None
    p = float(stats.norm.cdf(abs(margin) / (sd * math.sqrt(2))))
    z = float(stats.norm.ppf(1 - level / 2) + stats.norm.ppf(power))
    total = z * z / (3 * (p - 0.5) ** 2)
    try:
        floor = min_trials_for(level, limit)
    except ValueError:
        return None
    n = max(math.ceil(total / 2), floor)
    return n if n <= limit else None


# --- multiple comparisons -----------------------------------------------------------------


class Correction(StrEnum):
    """How the secondary metrics of a comparison share its level."""

    HOLM = "holm"
    """Holm's step-down: the chance of any false "better" or "worse" stays below the level
    (family-wise), whatever the correlation between metrics. The default, because a page is
    read as a set of claims: one false claim on it misleads."""
    BH = "bh"
    """Benjamini-Hochberg: the expected share of false claims among the claims stays below the
    level; more claims, but a page of 9 secondary metrics may then carry a false one."""


def adjust(p_values: Sequence[float], correction: Correction | str = Correction.HOLM) -> list[float]:
    """Adjusted p-values (compare each with the level) by Holm or Benjamini-Hochberg."""
    correction = Correction(correction)
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    if correction is Correction.HOLM:
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * p_values[i]))
            adjusted[i] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):
            i = order[rank]
            running = min(running, m * p_values[i] / (rank + 1))
            adjusted[i] = min(1.0, running)
    return adjusted


# --- comparisons --------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One other side against the baseline for one metric."""

    diff: float | None
    """median(other) - median(baseline); None when a median is missing or censored."""
    relative: float | None
    """diff / |median(baseline)|; None when the baseline median is 0 or not a number."""
    shift: Shift
    """Hodges-Lehmann shift and its Moses interval at the report's confidence."""
    p_value: float | None
    """Two-sided exact (stratified) rank-sum p-value; None when no test was possible."""
    method: str | None
    """"exact", "Monte Carlo (…)", None without a test."""
    verdict: Verdict
    reason: str
    """Why the verdict, in words: the p-value against its level, or why there is no test."""
    p_adjusted: float | None = None
    """The p-value after the page's correction; what the verdict compares with alpha."""
    adjustment: str = "none"
    """How p was adjusted, in words (`Holm over 9 metrics, Bonferroni over 2 comparisons`)."""
    min_p: float | None = None
    other_larger: bool | None = None
    margin: float | None = None
    """The practical margin of equivalence from the plan; None when the plan has none."""
    equivalence: Shift | None = None
    """The (1 - 2·level) Moses interval of the two one-sided tests (TOST)."""
    equivalent: bool | None = None
    """The equivalence interval lies inside ±margin; None without a margin."""
    trials_needed: int | None = None
    """Trials per side that would find a shift of the margin (or of one spread) with 80 % power."""
    needed_for: str = ""
    """What `trials_needed` is for, in words (`a shift of 2.00 s`, `one standard deviation (3.1 s)`)."""
    units: str = "trials"
    """What the test compared: `trials`, `trials, stratified by batch` or `runs`."""

    @property
    def diff_ci_low(self) -> float | None:
        return self.shift.low

    @property
    def diff_ci_high(self) -> float | None:
        return self.shift.high


def _fmt_p(p: float) -> str:
    return f"{p:.3g}" if p >= 0.001 else f"{p:.1e}"


def decide(comparison: Comparison, better: Better | str, alpha: float) -> Comparison:
    """The verdict of a comparison from its adjusted p-value and its equivalence test.

    Called again by runs.py after `adjust`; a verdict already fixed without a test (no data,
    too few, no verdict) stays."""
    if comparison.verdict in (Verdict.NO_DATA, Verdict.TOO_FEW, Verdict.NO_VERDICT):
        return comparison
    p = comparison.p_adjusted if comparison.p_adjusted is not None else comparison.p_value
    if p is None:
        return comparison
    shown = f"p = {_fmt_p(p)}" + (
        f" ({comparison.adjustment}; raw {_fmt_p(comparison.p_value or 0.0)})"
        if comparison.adjustment != "none"
        else ""
    )
    if p < alpha and comparison.other_larger is not None:
        good = (Better(better) is Better.HIGHER) == comparison.other_larger
        verdict = Verdict.BETTER if good else Verdict.WORSE
        reason = f"{shown} < {alpha:g}; {Better(better).value} is better"
    elif comparison.equivalent:
        verdict = Verdict.EQUIVALENT
        reason = f"{shown} ≥ {alpha:g}, and the shift's interval lies within ±{comparison.margin:g}"
    else:
        verdict = Verdict.INCONCLUSIVE
        if comparison.margin is None:
            why = "no margin in the plan to test equivalence against"
        else:
            why = f"the shift's interval reaches beyond ±{comparison.margin:g}"
        reason = f"{shown} ≥ {alpha:g}; {why}"
    return dataclasses.replace(comparison, verdict=verdict, reason=reason)


def compare(
    baseline_values: Sequence[float | None],
    other_values: Sequence[float | None],
    better: Better | str = Better.LOWER,
    alpha: float = 0.05,
    confidence: float = 0.95,
    *,
    margin: float | None = None,
    baseline_strata: Sequence[object] | None = None,
    other_strata: Sequence[object] | None = None,
    units: str = "trials",
) -> Comparison:
    """The other side against the baseline: HL shift, exact rank test at `alpha`, equivalence, verdict.

    `alpha` is the level of this one test (runs.py passes the page's share of it and adjusts
    afterwards); `margin` the practical margin that equivalence is judged against."""
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
    shift = hodges_lehmann(x, y, confidence) if n1 >= 2 and n2 >= 2 else hodges_lehmann(x, y, 1.0)
    if n1 < 2 or n2 < 2:
        shift = Shift(shift.estimate, None, None, None)
    sd = spread(x, y)
    needed_for = ""
    needed: int | None = None
    if margin is not None and sd is not None:
        needed, needed_for = trials_needed(margin, sd, alpha), f"a shift of {margin:g}"
    elif sd is not None:
        needed, needed_for = trials_needed(sd, sd, alpha), f"one standard deviation ({sd:.3g})"
    base_result = Comparison(
        diff, relative, shift, None, None, Verdict.INCONCLUSIVE, "", margin=margin,
        trials_needed=needed, needed_for=needed_for, units=units,
    )  # fmt: skip

    if n1 == 0 or n2 == 0:
        why = "no measured trial on " + ("either side" if n1 == n2 else "one side")
        return dataclasses.replace(base_result, verdict=Verdict.NO_DATA, reason=why)
    test = rank_test(x, y, baseline_strata, other_strata)
    if test is None:
        return dataclasses.replace(
            base_result, verdict=Verdict.NO_DATA, reason="no batch holds trials of both sides"
        )
    equivalence: Shift | None = None
    equivalent: bool | None = None
    if margin is not None and n1 >= 2 and n2 >= 2:
        equivalence = hodges_lehmann(x, y, 1 - 2 * alpha)
        equivalent = (
            equivalence.low is not None
            and equivalence.high is not None
            and equivalence.level is not None
            and -margin < equivalence.low
            and equivalence.high < margin
        )
    result = dataclasses.replace(
        base_result,
        p_value=test.p_value,
        method=test.method,
        min_p=test.min_p,
        other_larger=test.other_larger,
        equivalence=equivalence,
        equivalent=equivalent,
    )
    if test.min_p >= alpha:
        need = min_trials_for(alpha) if test.strata == 1 else None
        what = (
            f"need at least {need} per side for p < {alpha:g}"
            if need
            else f"the smallest possible p is {test.min_p:.3g}"
        )
        return dataclasses.replace(
            result,
            verdict=Verdict.TOO_FEW,
            reason=f"too few {units.split(',')[0]} ({n1} vs {n2}): {what}",
        )
    return decide(result, better, alpha)

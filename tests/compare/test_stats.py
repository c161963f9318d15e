"""harness.compare.stats against scipy as the reference, and the verdicts a reader relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.compare import stats
from harness.compare.stats import Better, Verdict


def scipy_interval(values: list[float], method: str = "BCa") -> tuple[float, float]:
    result = scipy_stats.bootstrap(
        (np.array(values, dtype=float),),
        np.median,
        confidence_level=0.95,
        method=method,
        n_resamples=stats.N_RESAMPLES,
        rng=np.random.default_rng(stats.SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


class TestSummarize:
    def test_median_and_bca_interval_equal_scipy_with_the_seed(self) -> None:
        """The median is numpy's and the interval is scipy's BCa bootstrap with the fixed seed."""
        values = [12.1, 14.8, 9.7, 11.2, 13.5, 10.9, 15.3]
        summary = stats.summarize(values)
        assert summary.median == pytest.approx(float(np.median(values)))
        assert summary.ci_method == "BCa"
        assert (summary.ci_low, summary.ci_high) == pytest.approx(scipy_interval(values))

    def test_same_inputs_give_the_same_interval(self) -> None:
        """Two calls give identical intervals, so a report renders the same twice."""
        values = [3.0, 8.0, 5.5, 4.2, 9.1]
        assert stats.summarize(values) == stats.summarize(values)

    def test_single_trial_has_no_interval(self) -> None:
        """With one trial there is a median but no interval."""
        summary = stats.summarize([7.0])
        assert (summary.n, summary.median) == (1, 7.0)
        assert (summary.ci_low, summary.ci_high, summary.has_interval) == (None, None, False)

    def test_identical_trials_give_a_point_interval(self) -> None:
        """All-equal trials (where scipy's BCa fails) give the value itself as the interval."""
        summary = stats.summarize([4.0, 4.0, 4.0, 4.0])
        assert (summary.median, summary.ci_low, summary.ci_high, summary.ci_method) == (
            4.0,
            4.0,
            4.0,
            "constant",
        )

    def test_heavy_ties_fall_back_to_the_percentile_interval(self) -> None:
        """Where BCa degenerates (constant jackknife), the percentile interval of scipy is used."""
        values = [1.0, 1.0, 1.0, 1.0, 2.0]
        summary = stats.summarize(values)
        assert summary.ci_method == "percentile"
        assert (summary.ci_low, summary.ci_high) == pytest.approx(scipy_interval(values, "percentile"))

    def test_no_trials(self) -> None:
        """An empty sample has no median rather than a crash."""
        summary = stats.summarize([])
        assert (summary.n, summary.median, summary.has_interval) == (0, None, False)

    def test_minority_not_recovered_counts_as_worst(self) -> None:
        """A trial that did not recover ranks above every measured one and shifts the median up."""
        summary = stats.summarize([10.0, 20.0, None])
        assert (summary.censored, summary.median, summary.median_censored) == (1, 20.0, False)
        assert summary.ci_high is None  # the interval reaches the unrecovered trial: unbounded
        assert summary.ci_low == pytest.approx(10.0)

    def test_majority_not_recovered_makes_the_median_not_recovered(self) -> None:
        """More than half of the trials not recovered: the median itself did not recover."""
        summary = stats.summarize([10.0, None, None])
        assert summary.median is None
        assert summary.median_censored

    def test_exactly_half_not_recovered_gives_a_lower_bound(self) -> None:
        """Half not recovered: the median is at least the largest recovery seen."""
        summary = stats.summarize([10.0, 14.0, None, None])
        assert (summary.median, summary.median_is_bound) == (14.0, True)

    def test_none_recovered(self) -> None:
        """Every trial not recovered: no number is made up for the median or the interval."""
        summary = stats.summarize([None, None, None])
        assert (summary.median, summary.ci_low, summary.ci_high) == (None, None, None)
        assert summary.median_censored and summary.censored == 3


class TestMinTrials:
    @pytest.mark.parametrize(("n1", "n2"), [(1, 1), (2, 3), (3, 3), (4, 4), (5, 5), (3, 10)])
    def test_min_p_value_is_the_exact_distributions(self, n1: int, n2: int) -> None:
        """The smallest two-sided exact p is 2 / C(n1 + n2, n1): all of one side above the other."""
        assert stats.min_p_value(n1, n2) == pytest.approx(min(1.0, 2 / math.comb(n1 + n2, n1)))

    @pytest.mark.parametrize(("alpha", "n"), [(0.1, 4), (0.05, 4), (0.01, 5), (0.001, 7)])
    def test_trials_needed_per_side(self, alpha: float, n: int) -> None:
        """3 vs 3 can reach p = 0.1 only, so 0.05 needs 4 per side and 0.01 needs 5."""
        assert stats.min_trials_for(alpha) == n
        assert stats.min_p_value(n, n) < alpha <= stats.min_p_value(n - 1, n - 1)


class TestCompare:
    def test_p_value_equals_scipy_exact(self) -> None:
        """Without ties the p-value is scipy's exact two-sided Mann-Whitney U on the same data."""
        base, other = [10.2, 11.5, 9.8, 12.0, 10.9, 13.1], [9.1, 10.0, 8.7, 11.0, 9.5, 8.9]
        comparison = stats.compare(base, other)
        expected = scipy_stats.mannwhitneyu(other, base, alternative="two-sided", method="exact").pvalue
        assert comparison.p_value == pytest.approx(float(expected))
        assert comparison.method == "exact"

    def test_p_value_with_ties_equals_scipy_default(self) -> None:
        """With ties the p-value is what scipy picks itself (asymptotic with tie correction)."""
        base, other = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0], [3.0, 3.0, 4.0, 4.0, 4.0, 2.0]
        comparison = stats.compare(base, other)
        expected = scipy_stats.mannwhitneyu(other, base, alternative="two-sided").pvalue
        assert comparison.p_value == pytest.approx(float(expected))
        assert comparison.method == "asymptotic"

    @pytest.mark.parametrize(
        ("better", "shift", "verdict"),
        [
            ("lower", -10.0, Verdict.BETTER),
            ("lower", +10.0, Verdict.WORSE),
            ("higher", +10.0, Verdict.BETTER),
            ("higher", -10.0, Verdict.WORSE),
        ],
    )
    def test_clear_shift_gets_the_verdict_of_the_metrics_direction(
        self, better: str, shift: float, verdict: Verdict
    ) -> None:
        """5 vs 5 fully separated: significant, better or worse by the metric's good direction."""
        base = [30.0, 31.0, 32.5, 29.5, 30.8]
        other = [v + shift for v in base]
        comparison = stats.compare(base, other, better=better)
        assert comparison.verdict is verdict
        assert comparison.p_value == pytest.approx(2 / math.comb(10, 5))
        assert comparison.diff == pytest.approx(shift)
        assert comparison.relative == pytest.approx(shift / float(np.median(base)))

    def test_overlapping_samples_are_no_significant_difference(self) -> None:
        """Interleaved samples: p at or above alpha, said as no significant difference."""
        comparison = stats.compare([1.0, 3.0, 5.0, 7.0, 9.0], [2.0, 4.0, 6.0, 8.0, 10.0])
        assert comparison.verdict is Verdict.NO_DIFFERENCE
        assert comparison.p_value is not None and comparison.p_value >= 0.05

    def test_three_vs_three_is_too_few_even_when_separated(self) -> None:
        """3 vs 3 cannot reach p < 0.05: the verdict says so and how many trials are needed."""
        comparison = stats.compare([10.0, 11.0, 12.0], [1.0, 2.0, 3.0])
        assert comparison.verdict is Verdict.TOO_FEW
        assert comparison.p_value is None
        assert "need at least 4 per side for p < 0.05" in comparison.reason
        assert comparison.diff == pytest.approx(-9.0)  # the difference is still shown

    def test_too_few_depends_on_alpha(self) -> None:
        """4 vs 4 separated is significant at 0.05 but too few at 0.01 (needs 5)."""
        base, other = [10.0, 11.0, 12.0, 13.0], [1.0, 2.0, 3.0, 4.0]
        assert stats.compare(base, other, alpha=0.05).verdict is Verdict.BETTER
        strict = stats.compare(base, other, alpha=0.01)
        assert strict.verdict is Verdict.TOO_FEW
        assert "need at least 5 per side for p < 0.01" in strict.reason

    def test_one_trial_per_side(self) -> None:
        """n=1 per side: no test and no interval, but the difference of the two values."""
        comparison = stats.compare([10.0], [4.0])
        assert comparison.verdict is Verdict.TOO_FEW
        assert (comparison.p_value, comparison.diff_ci_low) == (None, None)
        assert comparison.diff == pytest.approx(-6.0)

    def test_identical_samples(self) -> None:
        """All trials equal on both sides: no difference with p = 1, without scipy's zero variance."""
        comparison = stats.compare([5.0] * 5, [5.0] * 5)
        assert comparison.verdict is Verdict.NO_DIFFERENCE
        assert comparison.p_value == 1.0
        assert (comparison.diff, comparison.diff_ci_low, comparison.diff_ci_high) == (0.0, 0.0, 0.0)

    def test_no_data(self) -> None:
        """A side without values gives no data, not a verdict."""
        assert stats.compare([], [1.0, 2.0]).verdict is Verdict.NO_DATA

    def test_not_recovered_ranks_worst(self) -> None:
        """A side that never recovers is worse on recovery time; the test matches scipy with inf."""
        base = [8.0, 9.0, 10.0, 11.0, 9.5]
        other: list[float | None] = [None, None, None, None, 30.0]
        comparison = stats.compare(base, other, better=Better.LOWER)
        assert comparison.verdict is Verdict.WORSE
        assert comparison.diff is None  # the other median did not recover: no number to subtract
        expected = scipy_stats.mannwhitneyu([math.inf] * 4 + [30.0], base, alternative="two-sided").pvalue
        assert comparison.p_value == pytest.approx(float(expected))

    def test_no_impact_ranks_best_for_time_to_impact(self) -> None:
        """A null time_to_impact_s (no impact at all) is later than any impact: better."""
        base = [1.0, 2.0, 1.5, 0.5, 2.5]
        comparison = stats.compare(base, [None] * 5, better=Better.HIGHER)
        assert comparison.verdict is Verdict.BETTER

    def test_both_sides_never_recovered(self) -> None:
        """Neither side recovered in any trial: no difference, said in words, no crash."""
        comparison = stats.compare([None] * 5, [None] * 5)
        assert comparison.verdict is Verdict.NO_DIFFERENCE
        assert "all censored" in comparison.reason

    def test_difference_interval_equals_scipy_two_sample_bootstrap(self) -> None:
        """The interval of the difference of medians is scipy's independent two-sample bootstrap."""
        base, other = [10.2, 11.5, 9.8, 12.0, 10.9, 13.1], [9.1, 10.0, 8.7, 11.0, 9.5, 8.9]
        comparison = stats.compare(base, other)
        reference = scipy_stats.bootstrap(
            (np.array(base), np.array(other)),
            lambda x, y, axis=-1: np.median(y, axis=axis) - np.median(x, axis=axis),
            n_resamples=stats.N_RESAMPLES,
            rng=np.random.default_rng(stats.SEED),
        ).confidence_interval
        assert (comparison.diff_ci_low, comparison.diff_ci_high) == pytest.approx(
            (reference.low, reference.high)
        )
        assert comparison.diff_ci_low <= comparison.diff <= comparison.diff_ci_high

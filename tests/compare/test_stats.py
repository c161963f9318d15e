"""harness.compare.stats against exact references and seeded simulations (each a few seconds at most)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from harness.compare import stats
from harness.compare.stats import Verdict


class TestSummarize:
    def test_median_and_order_statistic_interval(self) -> None:
        """Five trials: the 95 % interval is the range, and its true level 93.75 % is stated."""
        summary = stats.summarize([12.0, 9.0, 15.0, 10.0, 11.0])
        assert (summary.median, summary.ci_low, summary.ci_high) == (11.0, 9.0, 15.0)
        assert summary.ci_method == "order statistics"
        assert summary.ci_level == pytest.approx(1 - 2 / 32)

    @pytest.mark.parametrize(
        ("n", "ranks", "level"), [(4, (1, 4), 0.875), (6, (1, 6), 0.96875), (9, (2, 8), 0.9609375)]
    )
    def test_ranks_and_true_level(self, n: int, ranks: tuple[int, int], level: float) -> None:
        """The narrowest symmetric interval reaching 95 %, or the range with its lower level."""
        low, high, true = stats.median_interval_ranks(n, 0.95)
        assert (low, high) == ranks
        assert true == pytest.approx(level)

    @pytest.mark.parametrize("n", [4, 5, 9])
    def test_interval_covers_the_true_median_at_its_stated_level(self, n: int) -> None:
        """Over 4,000 seeded samples of a skewed distribution coverage is the stated level ± 2 %."""
        rng = np.random.default_rng(7)
        samples = rng.lognormal(3.0, 0.5, size=(4000, n))
        true_median = math.exp(3.0)
        covered = 0
        level = 0.0
        for sample in samples:
            summary = stats.summarize(sample.tolist())
            level = summary.ci_level or 0.0
            covered += (summary.ci_low or -math.inf) <= true_median <= (summary.ci_high or math.inf)
        assert covered / len(samples) == pytest.approx(level, abs=0.02)

    def test_single_trial_has_no_interval(self) -> None:
        """One trial is a number to look at, not an estimate with an interval."""
        summary = stats.summarize([7.0])
        assert (summary.n, summary.median, summary.has_interval) == (1, 7.0, False)

    def test_identical_trials_give_a_point_interval(self) -> None:
        """Identical trials: the interval is the value itself."""
        summary = stats.summarize([4.0, 4.0, 4.0, 4.0])
        assert (summary.median, summary.ci_low, summary.ci_high, summary.ci_method) == (
            4.0,
            4.0,
            4.0,
            "constant",
        )

    def test_no_trials(self) -> None:
        """No trials: no median, no interval, no crash."""
        summary = stats.summarize([])
        assert (summary.n, summary.median, summary.has_interval) == (0, None, False)

    def test_minority_not_recovered_counts_as_worst(self) -> None:
        """One of three did not recover: the median is measured, the interval's top unbounded."""
        summary = stats.summarize([10.0, 20.0, None])
        assert (summary.censored, summary.median, summary.median_censored) == (1, 20.0, False)
        assert (summary.ci_low, summary.ci_high) == (10.0, None)

    def test_majority_not_recovered_makes_the_median_not_recovered(self) -> None:
        """Two of three did not recover: so did the median."""
        summary = stats.summarize([10.0, None, None])
        assert summary.median is None and summary.median_censored

    def test_exactly_half_not_recovered_gives_a_lower_bound(self) -> None:
        """Half did not recover: the median is at least the slowest recovery."""
        summary = stats.summarize([10.0, 14.0, None, None])
        assert (summary.median, summary.median_is_bound) == (14.0, True)

    def test_censored_below_gives_an_upper_bound(self) -> None:
        """Half had no impact (fault latency -inf): the median is at most the lowest measured."""
        summary = stats.summarize([-math.inf, -math.inf, 120.0, 150.0])
        assert (summary.median, summary.median_is_bound, summary.censored_low) == (120.0, True, True)
        assert summary.ci_low is None

    def test_none_recovered(self) -> None:
        """Every trial censored: no median, an interval beyond everything observed."""
        summary = stats.summarize([None, None, None])
        assert (summary.median, summary.ci_low, summary.ci_high, summary.ci_method) == (
            None,
            None,
            None,
            "censored",
        )


def _enumerated_p(x: list[float], y: list[float]) -> float:
    """Brute force: every split of the pooled values, the rank sum's distance from its mean."""
    pooled = np.array(x + y, dtype=float)
    ranks = scipy_stats.rankdata(pooled)
    n, m = len(pooled), len(y)
    mean = m * (n + 1) / 2
    observed = abs(ranks[len(x) :].sum() - mean)
    splits = list(itertools.combinations(range(n), m))
    hits = sum(abs(ranks[list(s)].sum() - mean) >= observed - 1e-9 for s in splits)
    return hits / len(splits)


class TestRankTest:
    def test_equals_scipy_exact_without_ties(self) -> None:
        """Without ties the p-value is scipy's exact two-sided Mann-Whitney U."""
        base, other = [10.2, 11.5, 9.8, 12.0, 10.9, 13.1], [9.1, 10.0, 8.7, 11.0, 9.5, 8.9]
        test = stats.rank_test(base, other)
        expected = scipy_stats.mannwhitneyu(other, base, method="exact").pvalue
        assert test is not None and test.method == "exact"
        assert test.p_value == pytest.approx(float(expected))

    def test_ties_get_the_exact_p_not_the_normal_approximation(self) -> None:
        """No data lost on 4 baseline trials, 3-6 lost on 4 others: exact 0.029, where the
        normal approximation with tie correction (the former method) says 0.021."""
        base, other = [0.0, 0.0, 0.0, 0.0], [3.0, 4.0, 5.0, 6.0]
        test = stats.rank_test(base, other)
        assert test is not None
        assert test.p_value == pytest.approx(2 / 70)  # 0.0286
        assert scipy_stats.mannwhitneyu(other, base).pvalue == pytest.approx(0.0211, abs=5e-4)

    def test_ties_match_brute_force(self) -> None:
        """Heavy ties: the enumeration equals a brute-force permutation count."""
        base, other = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0], [3.0, 3.0, 4.0, 4.0, 4.0, 2.0]
        test = stats.rank_test(base, other)
        assert test is not None and test.p_value == pytest.approx(_enumerated_p(base, other))

    def test_strata_of_pairs_is_the_sign_test(self) -> None:
        """Six blocks of one trial a side: the exact stratified p is the two-sided sign test's 2/64."""
        blocks = [1, 2, 3, 4, 5, 6]
        test = stats.rank_test([1.0] * 6, [2.0] * 6, blocks, blocks)
        assert test is not None
        assert (test.p_value, test.min_p, test.strata) == (pytest.approx(2 / 64), pytest.approx(2 / 64), 6)

    def test_monte_carlo_above_the_limit_is_seeded_and_close(self) -> None:
        """31 vs 31 exceeds the exact limit: a seeded Monte Carlo close to scipy's exact p."""
        rng = np.random.default_rng(3)
        base, other = rng.normal(0, 1, 31).tolist(), rng.normal(0.5, 1, 31).tolist()
        first, second = stats.rank_test(base, other), stats.rank_test(base, other)
        exact = scipy_stats.mannwhitneyu(other, base, method="exact").pvalue
        assert first is not None and first.method.startswith("Monte Carlo")
        assert first == second
        assert first.p_value == pytest.approx(float(exact), abs=0.01)

    @pytest.mark.parametrize(("n1", "n2"), [(1, 1), (2, 3), (3, 3), (4, 4), (5, 5), (3, 10)])
    def test_min_p_value_is_complete_separation(self, n1: int, n2: int) -> None:
        """The smallest two-sided exact p is 2 / C(n1 + n2, n1): all of one side above the other."""
        assert stats.min_p_value(n1, n2) == pytest.approx(min(1.0, 2 / math.comb(n1 + n2, n1)))

    @pytest.mark.parametrize(("alpha", "n"), [(0.1, 4), (0.05, 4), (0.01, 5), (0.001, 7)])
    def test_trials_needed_to_reach_alpha(self, alpha: float, n: int) -> None:
        """3 vs 3 can reach p = 0.1 only, so 0.05 needs 4 per side and 0.01 needs 5."""
        assert stats.min_trials_for(alpha) == n


class TestShift:
    def test_hodges_lehmann_and_moses_interval(self) -> None:
        """5 vs 5 at 95 %: c = 2, the interval [d(3), d(23)] with true level 1 - 8/252."""
        shift = stats.hodges_lehmann([1.0, 2.0, 3.0, 4.0, 5.0], [6.0, 7.0, 8.0, 9.0, 10.0])
        assert (shift.estimate, shift.low, shift.high) == (5.0, 2.0, 8.0)
        assert shift.level == pytest.approx(1 - 8 / 252)

    def test_moses_interval_covers_the_true_shift_at_its_level(self) -> None:
        """Over 2,000 seeded 5 vs 5 samples the interval covers the true shift at its level ± 2 %."""
        rng = np.random.default_rng(11)
        covered, level = 0, 0.0
        for _ in range(2000):
            shift = stats.hodges_lehmann(
                rng.exponential(10, 5).tolist(), (rng.exponential(10, 5) + 4).tolist()
            )
            level = shift.level or 0.0
            covered += (shift.low or -math.inf) <= 4.0 <= (shift.high or math.inf)
        assert covered / 2000 == pytest.approx(level, abs=0.02)


class TestAdjust:
    def test_holm(self) -> None:
        """Holm's step-down: (m - rank + 1)·p, made monotone."""
        assert stats.adjust([0.01, 0.04, 0.03], "holm") == pytest.approx([0.03, 0.06, 0.06])

    def test_benjamini_hochberg(self) -> None:
        """BH step-up: m·p / rank, made monotone from the top."""
        assert stats.adjust([0.01, 0.04, 0.03], "bh") == pytest.approx([0.03, 0.04, 0.04])


class TestTrialsNeeded:
    def test_one_standard_deviation(self) -> None:
        """Noether's approximation for a one-SD shift at 0.05: about 17-20 trials a side (simulated
        power of the exact test: 0.86 at 20)."""
        assert 15 <= (stats.trials_needed(1.0, 1.0, 0.05) or 0) <= 21

    def test_huge_shift_needs_a_handful(self) -> None:
        """A huge shift: at least the 4 a side the exact test needs for p < 0.05, and the
        approximation's 6 at most (it does not know the test's discreteness)."""
        assert 4 <= (stats.trials_needed(100.0, 1.0, 0.05) or 0) <= 6

    def test_page_level_raises_the_floor(self) -> None:
        """At a level of 0.001 no fewer than the 7 a side the exact test then needs."""
        assert (stats.trials_needed(100.0, 1.0, 0.001) or 0) >= 7


class TestCompare:
    @pytest.mark.parametrize(
        ("better", "shift", "verdict"),
        [("lower", -10.0, Verdict.BETTER), ("lower", +10.0, Verdict.WORSE),
         ("higher", +10.0, Verdict.BETTER), ("higher", -10.0, Verdict.WORSE)],
    )  # fmt: skip
    def test_clear_shift_gets_the_verdict_of_the_metrics_direction(
        self, better: str, shift: float, verdict: Verdict
    ) -> None:
        """Complete separation at 5 vs 5: p = 2/252, verdict in the metric's good direction."""
        base = [20.0, 21.0, 22.0, 23.0, 24.0]
        comparison = stats.compare(base, [v + shift for v in base], better=better)
        assert comparison.verdict is verdict
        assert comparison.p_value == pytest.approx(2 / math.comb(10, 5))
        assert comparison.shift.estimate == pytest.approx(shift)
        assert comparison.diff == pytest.approx(shift)

    def test_overlap_without_margin_is_inconclusive(self) -> None:
        """Overlapping samples without a margin: inconclusive, never "no difference"."""
        comparison = stats.compare([1.0, 3.0, 5.0, 7.0, 9.0], [2.0, 4.0, 6.0, 8.0, 10.0])
        assert comparison.verdict is Verdict.INCONCLUSIVE
        assert "no margin" in comparison.reason

    def test_equivalent_inside_the_margin(self) -> None:
        """The 90 % Moses interval inside ±margin: equivalent (TOST)."""
        base, other = [20.0, 22.0, 19.0, 25.0, 21.0], [21.0, 20.0, 23.0, 19.0, 22.0]
        assert stats.compare(base, other, margin=5.0).verdict is Verdict.EQUIVALENT
        assert stats.compare(base, other, margin=1.0).verdict is Verdict.INCONCLUSIVE

    def test_three_vs_three_is_too_few_even_when_separated(self) -> None:
        """3 vs 3 cannot reach p < 0.05 at all: too few trials, and how many are needed."""
        comparison = stats.compare([10.0, 11.0, 12.0], [1.0, 2.0, 3.0])
        assert comparison.verdict is Verdict.TOO_FEW
        assert "need at least 4 per side for p < 0.05" in comparison.reason
        assert comparison.diff == pytest.approx(-9.0)

    def test_one_trial_per_side(self) -> None:
        """One trial a side: too few, the difference still shown, no interval."""
        comparison = stats.compare([10.0], [4.0])
        assert comparison.verdict is Verdict.TOO_FEW
        assert (comparison.diff_ci_low, comparison.diff) == (None, pytest.approx(-6.0))

    def test_identical_samples(self) -> None:
        """All ten trials equal: p = 1, a zero shift, and equivalent against any margin."""
        comparison = stats.compare([5.0] * 5, [5.0] * 5, margin=0.5)
        assert comparison.p_value == pytest.approx(1.0)
        assert comparison.verdict is Verdict.EQUIVALENT

    def test_no_data(self) -> None:
        """A side without values gives no data, not a verdict."""
        assert stats.compare([], [1.0, 2.0]).verdict is Verdict.NO_DATA

    def test_not_recovered_ranks_worst(self) -> None:
        """A side that mostly never recovers is worse on recovery time; its median has no number."""
        comparison = stats.compare([8.0, 9.0, 10.0, 11.0, 9.5], [None, None, None, None, 30.0])
        assert comparison.verdict is Verdict.WORSE
        assert comparison.diff is None

    def test_no_impact_trials_count_as_best_not_dropped(self) -> None:
        """2 trials without impact (fault latency -inf: best) and 3 impacted above every baseline
        trial: not "worse" (dropping the two gave 3 vs 5 separated, p = 0.036)."""
        base = [110.0, 120.0, 125.0, 130.0, 140.0]
        other = [-math.inf, -math.inf, 150.0, 160.0, 170.0]
        dropped = stats.compare(base, other[2:])
        assert dropped.verdict is Verdict.WORSE and dropped.p_value == pytest.approx(0.0357, abs=1e-3)
        kept = stats.compare(base, other)
        assert kept.verdict is Verdict.INCONCLUSIVE

    def test_both_sides_never_recovered(self) -> None:
        """Neither side recovered in any trial: no verdict either way, said in words, no crash."""
        comparison = stats.compare([None] * 5, [None] * 5)
        assert comparison.verdict is Verdict.INCONCLUSIVE
        assert comparison.p_value == pytest.approx(1.0)

"""Seeded simulations of whole comparison pages (tests/compare/simulation.py), each a few seconds:
the page-wise chance of a false "better" or "worse", and that real shifts are still found.
The full-size runs (1,000 pages) are benchmarks/compare_aa.py; their numbers are in docs/compare.md."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.compare import page, stats
from harness.compare.stats import Better, Verdict
from tests.compare import simulation


class TestAAPages:
    def test_interleaved_seven_scenarios(self) -> None:
        """7 scenarios x 10 correlated metrics, 8 trials a side in one batch, half the variance
        from shared time slots: at most 5 % of A/A pages carry any better or worse."""
        assert simulation.pages_with_claims(100, seed=1, scenarios=7, trials=8) <= 0.05

    def test_interleaved_one_scenario_five_trials(self) -> None:
        """One scenario (the whole alpha on it), 5 trials a side: at most 5 % of A/A pages."""
        assert simulation.pages_with_claims(300, seed=2, scenarios=1, trials=5) <= 0.05

    def test_one_separate_run_a_side_never_claims(self) -> None:
        """One run a side with the run's luck at half the variance (pooling trials gave ~0.30
        false positives per metric): no verdict at all, so no false claim."""
        rng = np.random.default_rng(3)
        decided = simulation.simulate_page(rng, scenarios=7, trials=5, interleaved=False)
        verdicts = {cell.comparison.verdict for cells in decided.values() for cell in cells}
        assert verdicts == {Verdict.NO_VERDICT}
        assert "single run" in decided[0][0].comparison.reason

    def test_several_separate_runs_a_side(self) -> None:
        """4 runs of 2 trials a side, run luck at half the variance: runs are the units, and at
        most 5 % of A/A pages carry a claim."""
        share = simulation.pages_with_claims(
            300, seed=4, scenarios=1, trials=8, runs_per_side=4, interleaved=False
        )
        assert share <= 0.05


class TestRealShift:
    def test_recovery_slower_is_found_interleaved(self) -> None:
        """Recovery 34.7 s against 20 s (spread 4 and 6 s, shared slot effects of 3 s), one batch,
        5 trials a side: found "worse" on at least 80 % of 200 seeded pages (85 % with this seed)."""
        rng = np.random.default_rng(5)
        found = 0
        for _ in range(200):
            slots = rng.normal(0, 3.0, 5)
            base = 20.0 + slots + rng.normal(0, 4.0, 5)
            other = 34.7 + slots + rng.normal(0, 6.0, 5)
            batch = ("b",) * 5
            comparison = page.compare_samples(
                page.Sample(tuple(base), ("a",) * 5, batch), page.Sample(tuple(other), ("o",) * 5, batch),
                Better.LOWER, 0.05,
            )  # fmt: skip
            decided = page.decide_page(
                {"s": [page.Cell("recovery_time_s", Better.LOWER, True, comparison)]}, 0.05
            )
            found += decided["s"][0].comparison.verdict is Verdict.WORSE
        assert found / 200 >= 0.8

    def test_shift_in_one_of_seven_scenarios_with_eight_trials(self) -> None:
        """A 2-SD shift in one scenario of seven, 8 trials a side interleaved: found on most pages."""
        assert simulation.power(60, seed=6, scenarios=7, trials=8, shift_sd=2.0) >= 0.6


class TestPageRules:
    def test_five_trials_over_seven_comparisons_is_too_few(self) -> None:
        """alpha 0.05 over 7 comparisons leaves 0.0071 each, below 5 vs 5's smallest p (0.0079)."""
        rng = np.random.default_rng(7)
        decided = simulation.simulate_page(rng, scenarios=7, trials=5)
        primary = decided[0][0].comparison
        assert primary.verdict is Verdict.TOO_FEW
        assert "need at least 6 per side" in primary.reason

    def test_primary_adjusted_by_bonferroni_over_comparisons(self) -> None:
        """Two comparisons on the page: the primary's p is doubled."""
        comparison = stats.compare([1.0, 2, 3, 4, 5, 6, 7], [8.0, 9, 10, 11, 12, 13, 14], alpha=0.025)
        cells = {k: [page.Cell("recovery_time_s", Better.LOWER, True, comparison)] for k in "ab"}
        decided = page.decide_page(cells, 0.05)
        assert decided["a"][0].comparison.p_adjusted == pytest.approx(2 * comparison.p_value)
        assert decided["a"][0].comparison.adjustment == "Bonferroni over 2 comparisons"

    def test_run_medians_keep_censored_runs(self) -> None:
        """A run whose median did not recover is +inf, not dropped."""
        sample = page.Sample((1.0, math.inf, math.inf, 3.0), ("r1", "r1", "r1", "r2"), (None,) * 4)
        assert sample.run_medians() == {"r1": math.inf, "r2": 3.0}

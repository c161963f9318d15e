"""Latency histograms: accuracy against exact percentiles, exact merges, JSON round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.timeline.histogram import Histogram


def exact(values: np.ndarray, q: float) -> float:
    """Exact nearest-rank percentile (the sample at rank ceil(q·n)), which Histogram.quantile approximates.

    Computed by hand: numpy's inverted_cdf takes q·100/100, which for 0.999 lands one rank too high.
    """
    rank = max(1, math.ceil(q * len(values) - 1e-9))
    return float(np.sort(values)[rank - 1])


SAMPLES = {
    "lognormal": lambda rng: rng.lognormal(mean=3.0, sigma=1.0, size=50_000),
    "bimodal": lambda rng: np.concatenate([rng.normal(5, 1, 40_000).clip(0.01), rng.normal(2000, 200, 800)]),
    "uniform-wide": lambda rng: rng.uniform(0.05, 60_000, 20_000),
    "heavy-tail": lambda rng: (rng.pareto(1.5, 30_000) + 1) * 3,
}


class TestAccuracy:
    @pytest.mark.parametrize("kind", SAMPLES)
    @pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 0.999, 1.0])
    def test_quantiles_within_one_percent_of_exact(self, kind: str, q: float) -> None:
        """Every quantile read from the histogram is within 1 % of the exact sample quantile."""
        values = SAMPLES[kind](np.random.default_rng(7))
        hist = Histogram()
        hist.add_many(values)
        got = hist.quantile(q)
        assert got == pytest.approx(exact(values, q), rel=0.01)

    @pytest.mark.parametrize("kind", SAMPLES)
    def test_merged_parts_equal_the_whole(self, kind: str) -> None:
        """Histograms of parts (buckets, workers) merge into exactly the histogram of the whole."""
        values = SAMPLES[kind](np.random.default_rng(11))
        whole = Histogram()
        whole.add_many(values)
        merged = Histogram()
        for part in np.array_split(values, 37):
            h = Histogram()
            h.add_many(part)
            merged.merge(h)
        assert merged == whole
        for q in (0.5, 0.99):
            assert merged.quantile(q) == pytest.approx(exact(values, q), rel=0.01)

    def test_vectorised_add_matches_one_by_one(self) -> None:
        """add_many (the recorder's path) bins values exactly as add does."""
        values = np.random.default_rng(3).lognormal(2, 2, 5000)
        a, b = Histogram(), Histogram()
        a.add_many(values)
        for v in values:
            b.add(float(v))
        assert a == b


class TestEdges:
    def test_empty_histogram_has_no_quantile(self) -> None:
        """An empty window says 'no data', not zero latency."""
        assert Histogram().quantile(0.99) is None

    def test_zero_latency_counts_in_the_zero_bin(self) -> None:
        """Failures before sending (0 ms) count but read back as 0."""
        h = Histogram()
        h.add_many(np.array([0.0, 0.0, 10.0]))
        assert h.count == 3 and h.zero == 2
        assert h.quantile(0.5) == 0.0 and h.quantile(1.0) == pytest.approx(10.0, rel=0.01)

    def test_json_round_trip(self) -> None:
        """What the recorder writes reads back identical."""
        h = Histogram()
        h.add_many(np.random.default_rng(1).exponential(20, 1000))
        assert Histogram.from_json(h.to_json(), h.relative_accuracy) == h

    def test_merging_different_accuracies_is_refused(self) -> None:
        """Bins of different widths cannot be added."""
        with pytest.raises(ValueError, match="accuracy"):
            Histogram(0.01).merge(Histogram(0.005))

    def test_quantile_out_of_range(self) -> None:
        with pytest.raises(ValueError):
            Histogram().quantile(1.5)

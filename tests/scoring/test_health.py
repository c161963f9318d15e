"""Health: thresholds resolved from policy and baseline, and the per-bucket verdict."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from harness.scoring import HealthPolicy
from harness.scoring.health import Thresholds, healthy, impact, rolling_rate, thresholds, wilson_lower
from harness.timeline.loading import load_series
from harness.timeline.series import Window
from tests.scoring.test_evidence import simulated
from tests.scoring.timelines import T0, scenario


def baseline(
    requests: int = 1000,
    failures: int = 0,
    kpi: int = 100,
    duration_s: float = 50.0,
    p95: float | None = 20.0,
) -> Window:
    percentiles = {"p50": None if p95 is None else p95 / 2, "p95": p95, "p99": p95}
    return Window(
        T0, T0 + duration_s, int(duration_s), duration_s, requests, failures, kpi, percentiles, percentiles
    )


class TestThresholds:
    @pytest.mark.parametrize(
        ("policy", "window", "error_rate", "p95_ms", "kpi_min_per_s"),
        [
            (HealthPolicy(), baseline(), 0.01, 70.0, 1.0),
            (HealthPolicy(), baseline(failures=20, p95=200.0), 0.04, 400.0, 1.0),
            (HealthPolicy(), baseline(failures=5), 0.015, 70.0, 1.0),
            (
                HealthPolicy(error_rate=0.05, p95_ms=300.0, kpi_drop=0.2),
                baseline(failures=20),
                0.05,
                300.0,
                1.6,
            ),
            (HealthPolicy(), baseline(kpi=20), 0.01, 70.0, None),
            (HealthPolicy(kpi_window_s=10.0), baseline(kpi=20), 0.01, 70.0, 0.2),
            (HealthPolicy(), baseline(requests=0, kpi=0, p95=None), 0.01, None, None),
            (HealthPolicy(p95_ms=300.0), baseline(requests=0, kpi=0, p95=None), 0.01, 300.0, None),
            (
                HealthPolicy(kpi_drop=0.5),
                baseline(requests=0, kpi=0, duration_s=0.0, p95=None),
                0.01,
                None,
                None,
            ),
        ],
        ids=[
            "clean",
            "noisy",
            "slightly-noisy",
            "absolute",
            "sparse-kpi",
            "wider-kpi-window",
            "empty-baseline",
            "empty-baseline-slo",
            "no-baseline-bucket",
        ],
    )
    def test_resolved_thresholds(
        self,
        policy: HealthPolicy,
        window: Window,
        error_rate: float,
        p95_ms: float | None,
        kpi_min_per_s: float | None,
    ) -> None:
        """Unset tolerances derive from the baseline (2x, with floors); a sparse or empty baseline skips what it cannot say."""
        got = thresholds(policy, window)
        assert got.error_rate == pytest.approx(error_rate)
        assert got.p95_ms == (None if p95_ms is None else pytest.approx(p95_ms))
        assert got.kpi_min_per_s == (None if kpi_min_per_s is None else pytest.approx(kpi_min_per_s))
        assert (got.kpi_window_s, got.min_requests) == (policy.kpi_window_s, policy.min_requests)

    def test_to_dict_is_rounded_plain_numbers(self) -> None:
        """The resolved thresholds serialise with the key names result.json uses."""
        got = Thresholds(1 / 3, 100 / 3, None, 5.0, 1).to_dict()
        assert got == {
            "error_rate": 0.333333,
            "p95_ms": 33.333,
            "kpi_min_per_s": None,
            "kpi_window_s": 5.0,
            "min_requests": 1,
            "confidence": 0.95,
            "impact_buckets": 3,
        }

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"error_rate": 1.5},
            {"p95_ms": 0.0},
            {"kpi_drop": -0.1},
            {"kpi_window_s": 0.0},
            {"min_requests": -1},
            {"confidence": 0.4},
            {"confidence": 1.0},
            {"impact_buckets": 0},
        ],
    )
    def test_a_policy_out_of_range_is_refused(self, kwargs: dict) -> None:
        """Impossible tolerances raise ValueError when the policy is made."""
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            HealthPolicy(**kwargs)


class TestHealthy:
    def limits(self, **kwargs: object) -> Thresholds:
        values = {
            "error_rate": 0.1,
            "p95_ms": 300.0,
            "kpi_min_per_s": None,
            "kpi_window_s": 5.0,
            "min_requests": 1,
        }
        return Thresholds(**{**values, **kwargs})  # type: ignore[arg-type]

    def test_a_stall_is_unhealthy(self, tmp_path: Path) -> None:
        """A bucket where nothing completed (tick only, or no line) is unhealthy while load runs."""
        series = load_series(scenario(tmp_path / "t.jsonl", seconds=6, stalled={2}, missing={4}))
        assert healthy(series, self.limits()).tolist() == [True, True, False, True, False, True]
        assert healthy(series, self.limits(min_requests=0)).all()
        assert not healthy(series, self.limits(min_requests=31)).any()

    @pytest.mark.parametrize(("failures", "ok"), [(0, True), (3, True), (4, False), (20, False)])
    def test_at_confidence_one_half_the_raw_error_rate_is_judged(
        self, tmp_path: Path, failures: int, ok: bool
    ) -> None:
        """Confidence 0.5 (z = 0) is the raw rate: healthy up to and including the threshold (3/30 = 0.1 here)."""
        series = load_series(
            scenario(tmp_path / "t.jsonl", seconds=1, overrides={0: {"catalog": {"failures": failures}}})
        )
        assert healthy(series, self.limits(confidence=0.5)).tolist() == [ok]

    @pytest.mark.parametrize(
        ("failures", "error_rate", "ok"),
        [
            (4, 0.1, True),
            (5, 0.1, True),
            (6, 0.1, False),
            (20, 0.1, False),
            (1, 0.01, True),
            (2, 0.01, False),
        ],
    )
    def test_error_rate_breaches_only_on_evidence(
        self, tmp_path: Path, failures: int, error_rate: float, ok: bool
    ) -> None:
        """A bucket breaches when the 95 % Wilson lower bound of failures/30 is above the threshold (6/30: 0.107 > 0.1)."""
        series = load_series(
            scenario(tmp_path / "t.jsonl", seconds=1, overrides={0: {"catalog": {"failures": failures}}})
        )
        assert healthy(series, self.limits(error_rate=error_rate)).tolist() == [ok]

    def test_a_tiny_bucket_that_failed_is_unhealthy(self, tmp_path: Path) -> None:
        """One request, failed: even one is evidence against a 1 % threshold (lower bound 0.27), so it breaches."""
        one = {0: {"catalog": {"requests": 1, "failures": 1}, "purchase": {"requests": 0, "kpi": 0}}}
        series = load_series(scenario(tmp_path / "t.jsonl", seconds=1, overrides=one))
        assert healthy(series, self.limits(error_rate=0.01)).tolist() == [False]

    def test_p95_is_judged_on_corrected_latency(self, tmp_path: Path) -> None:
        """Requests answered fast but sent late (a stall users waited through) breach the p95 threshold."""
        slow = {0: {"catalog": {"corrected_ms": 900.0}}, 1: {"catalog": {"latency_ms": 250.0}}}
        series = load_series(scenario(tmp_path / "t.jsonl", seconds=3, overrides=slow))
        assert series.latency.p95_ms[0] == pytest.approx(50.0, rel=0.01)
        assert healthy(series, self.limits()).tolist() == [False, True, True]
        assert healthy(series, self.limits(p95_ms=None)).all()

    @pytest.mark.parametrize(("slow", "ok"), [(1, True), (2, True), (3, True), (4, False)])
    def test_p95_breaches_only_on_evidence_that_more_than_5_percent_are_slow(
        self, tmp_path: Path, slow: int, ok: bool
    ) -> None:
        """Of 30 requests, 2 slow ones make the raw p95 slow; the Wilson lower bound of the slow share passes 5 % at 4 (0.061)."""
        over = {
            0: {
                "purchase": {"requests": slow, "kpi": 0, "latency_ms": 900.0},
                "catalog": {"requests": 30 - slow},
            }
        }
        series = load_series(scenario(tmp_path / "t.jsonl", seconds=1, overrides=over))
        assert (series.latency_corrected.p95_ms[0] > 300.0) == (slow >= 2)
        assert healthy(series, self.limits()).tolist() == [ok]
        assert healthy(series, self.limits(confidence=0.5)).tolist() == [slow < 2]

    def test_kpi_is_judged_over_a_rolling_window(self, tmp_path: Path) -> None:
        """KPI at 2/s, then none for 4 s: the 5 s rate falls below 1/s only on the third empty second."""
        no_kpi = {s: {"purchase": {"kpi": 0}} for s in range(5, 9)}
        series = load_series(scenario(tmp_path / "t.jsonl", seconds=12, overrides=no_kpi))
        got = healthy(series, self.limits(kpi_min_per_s=1.0))
        assert got.tolist() == [True] * 7 + [False] * 4 + [True]


class TestWilsonLower:
    @pytest.mark.parametrize(
        ("events", "trials", "expected"),
        [(1, 60, 0.003727), (2, 60, 0.011093), (1, 1, 0.269866), (1, 5, 0.045962), (0, 0, 0.0), (0, 10, 0.0)],
    )
    def test_known_bounds_at_95_percent_one_sided(self, events: int, trials: int, expected: float) -> None:
        """The lower bound of the Wilson score interval at z = 1.645; nothing to judge gives 0."""
        got = wilson_lower(np.array([events]), np.array([trials]), 1.6448536269514722)
        assert got[0] == pytest.approx(expected, abs=1e-6)

    def test_z_zero_is_the_raw_rate(self) -> None:
        """Without confidence asked, the bound is the observed rate."""
        got = wilson_lower(np.array([0, 1, 3, 5]), np.array([0, 4, 30, 5]), 0.0)
        assert got.tolist() == [0.0, 0.25, 0.1, 1.0]


class TestImpact:
    @pytest.mark.parametrize(
        ("bad", "run", "expected"),
        [
            ("..X..", 3, "....."),
            ("..XXX.", 3, "..XXX."),
            ("XX.XXXX.X", 3, "...XXXX.."),
            ("X.X.X.X", 3, "......."),
            ("....XX", 3, "......"),
            ("XXX", 3, "XXX"),
            ("X.X", 1, "X.X"),
            ("", 3, ""),
        ],
        ids=["lone", "run", "runs", "alternating", "cut-by-the-end", "whole", "k1", "empty"],
    )
    def test_only_runs_of_k_unhealthy_buckets_are_impact(self, bad: str, run: int, expected: str) -> None:
        """A bucket is impact when it is in k unhealthy buckets in a row; shorter runs are not."""
        got = impact(np.array([c == "X" for c in bad], dtype=bool), run)
        assert "".join("X" if b else "." for b in got) == expected


class TestRollingRate:
    @pytest.mark.parametrize(
        ("counts", "bucket_s", "window_s", "expected"),
        [
            ([5, 5, 5, 5], 1.0, 2.0, [5.0, 5.0, 5.0, 5.0]),
            ([2, 0, 0, 4], 1.0, 2.0, [2.0, 1.0, 0.0, 2.0]),
            ([1, 1, 1, 1], 0.5, 1.0, [2.0, 2.0, 2.0, 2.0]),
            ([3, 0, 3], 1.0, 0.2, [3.0, 0.0, 3.0]),
            ([], 1.0, 5.0, []),
        ],
    )
    def test_rate_over_the_window_ending_at_each_bucket(
        self, counts: list, bucket_s: float, window_s: float, expected: list
    ) -> None:
        """Events per second over the last whole buckets of the window (at least one; fewer at the start)."""
        got = rolling_rate(np.array(counts, dtype=np.int64), bucket_s, window_s)
        assert got.tolist() == expected


class TestPooled:
    """Runs of `impact_buckets` buckets judged on their pooled counts (30 requests a bucket, threshold 10 %)."""

    def verdict(self, tmp_path: Path, failures: list[int]) -> str:
        overrides = {s: {"catalog": {"failures": n}} for s, n in enumerate(failures)}
        series = load_series(scenario(tmp_path / "t.jsonl", seconds=len(failures), overrides=overrides))
        limits = Thresholds(0.1, None, None, 5.0, 1)
        return "".join("." if ok else "X" for ok in healthy(series, limits))

    @pytest.mark.parametrize(
        ("failures", "expected"),
        [
            ([0, 0, 5, 5, 5, 0, 0], "..XXX.."),
            ([0, 5, 5, 3, 5, 5, 0], "......."),
            ([0, 0, 20, 0, 0], "..X.."),
            ([0, 4, 20, 0, 0], "..X.."),
            ([0, 4, 20, 4, 0], ".XXX."),
            ([0, 0, 5, 5, 0, 0], "......"),
        ],
        ids=[
            "sustained",
            "one-at-the-threshold-breaks-it",
            "burst-alone",
            "burst-and-one",
            "burst-between",
            "short",
        ],
    )
    def test_a_run_breaches_on_pooled_evidence_when_each_bucket_leans_over(
        self, tmp_path: Path, failures: list[int], expected: str
    ) -> None:
        """5 of 30 is no evidence alone (0.084), 15 of 90 is (0.112); a bucket at or under 10 % keeps a run from pooling."""
        assert self.verdict(tmp_path, failures) == expected

    @pytest.mark.parametrize("seed", range(5))
    def test_a_verdict_depends_only_on_the_buckets_within_k_minus_1(self, seed: int) -> None:
        """Judging a..b with k - 1 buckets of margin on each side (clipped to lo..hi) gives the verdicts judging lo..hi gives."""
        series = simulated(np.random.default_rng(seed), 0.08, requests=30)
        limits = Thresholds(0.05, None, None, 5.0, 1)
        lo, hi, k = 5, 80, limits.impact_buckets
        whole = healthy(series, limits, lo, hi)
        assert 5 < int((~whole).sum()) < 70, "the draw has both verdicts"
        for a in range(lo, hi, 7):
            b = min(hi, a + 5)
            first, last = max(lo, a - k + 1), min(hi, b + k - 1)
            part = healthy(series, limits, first, last)[a - first : b - first]
            assert part.tolist() == whole[a - lo : b - lo].tolist()

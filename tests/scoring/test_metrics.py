"""score_scenario end to end on timelines with known answers: impact, recovery, cost, score."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.scoring import (
    HealthPolicy,
    Phases,
    RecoveryWatch,
    ScenarioMetrics,
    ScoringSettings,
    pooled_thresholds,
    recovered,
    score_scenario,
)
from harness.timeline import load_series
from tests.scoring.timelines import CATALOG, HEADER, PURCHASE, T0, bad, bucket, phases, scenario, write_lines

KEYS = {
    "time_to_impact_s",
    "recovery_time_s",
    "recovery_after_fault_end_s",
    "requests",
    "failed_requests",
    "error_rate",
    "peak_error_rate",
    "availability",
    "false_alarm_rate",
    "latency_ms",
    "latency_uncorrected_ms",
    "applied",
    "peak_p99_ms",
    "horizon_s",
    "horizon_p99_ms",
    "generator_late_share",
    "generator_lag_max_ms",
    "kpi",
    "kpi_baseline_per_s",
    "kpi_lost",
    "downtime_s",
    "downtime_cost_usd",
    "data_loss",
    "resilience_score",
    "thresholds",
}


def score(
    tmp_path: Path,
    overrides: dict | None = None,
    stalled: Any = (),
    missing: Any = (),
    at: Phases | None = None,
    settings: ScoringSettings | None = None,
    data_loss: int | None = None,
    data_loss_unverified: bool = False,
) -> ScenarioMetrics:
    """Score the two-name scenario (120 s; baseline from 10 s, fault 60.5-70.2 s, end 120 s); unless
    told, the horizon is the observation (59.5 s from the fault start, to 120 s)."""
    path = scenario(tmp_path / "timeline.jsonl", overrides=overrides, stalled=stalled, missing=missing)
    series, at, settings = (
        load_series(path),
        at or phases(),
        settings or ScoringSettings(horizon_s=OBSERVED_S),
    )
    metrics = score_scenario(
        series, at, settings, data_loss=data_loss, data_loss_unverified=data_loss_unverified
    )
    # The engine's recovery watch asks `recovered` with the same inputs: it must agree, every time.
    assert recovered(series, at, settings) == metrics.recovered_t
    return metrics


OBSERVED_S = 59.5
"""From the fault start (60.5 s) to the end of the default phases (120 s)."""


def failing_and_half_kpi(seconds: range) -> dict:
    return {s: {"catalog": {"failures": 10}, "purchase": {"kpi": 1}} for s in seconds}


class TestNoImpact:
    def test_a_fault_users_did_not_feel_scores_100(self, tmp_path: Path) -> None:
        """Nothing unhealthy: no impact, recovery 0, full availability, nothing lost, score 100."""
        m = score(tmp_path)
        assert (m.time_to_impact_s, m.recovery_time_s, m.recovery_after_fault_end_s) == (None, 0.0, 0.0)
        assert (m.requests, m.failed_requests, m.error_rate, m.peak_error_rate) == (1800, 0, 0.0, 0.0)
        assert (m.availability, m.downtime_s, m.downtime_cost_usd) == (1.0, 0.0, 0.0)
        assert (m.kpi, m.kpi_baseline_per_s, m.kpi_lost) == (120, 2.0, 0.0)
        assert m.resilience_score == 100.0
        assert m.score_breakdown == {
            "recovery": 0.0,
            "availability": 0.0,
            "errors": 0.0,
            "latency": 0.0,
            "data_loss": 0.0,
        }
        assert m.latency_ms["fault"] == {"p50": None, "p95": None, "p99": None}
        assert m.latency_ms["recovery"]["p50"] == pytest.approx(20.0, rel=0.01)


class TestImpactThatRecovers:
    def test_exact_impact_recovery_downtime_cost_and_kpi_lost(self, tmp_path: Path) -> None:
        """Seconds 62-71 fail a third of requests and halve the KPI: every metric follows exactly."""
        m = score(tmp_path, failing_and_half_kpi(range(62, 72)))
        assert m.time_to_impact_s == 1.5  # bucket 62 starts 1.5 s after the fault (60.5)
        assert m.recovery_time_s == 11.5  # bucket 72 starts the final healthy run
        assert m.recovery_after_fault_end_s == 1.8  # the rollback started at 70.2
        assert m.recovered_t == T0 + 72
        assert (m.downtime_s, m.downtime_cost_usd) == (10.0, 111.11)  # 10 s at $40,000/h
        assert (m.requests, m.failed_requests) == (1800, 100)
        assert (m.error_rate, m.peak_error_rate, m.availability) == (0.055556, 0.333333, 0.833333)
        assert (m.kpi, m.kpi_baseline_per_s) == (110, 2.0)
        assert m.kpi_lost == 10.0  # fault window 60-72 (12 s) expected 24, delivered 2 + 2 + 10 x 1
        assert m.resilience_score == 70.2
        assert m.score_breakdown == {
            "recovery": 5.63,  # 35 x 11.5 / (11.5 + 60)
            "availability": 4.17,
            "errors": 20.0,
            "latency": 0.0,
            "data_loss": 0.0,
        }
        assert m.thresholds == {
            "error_rate": 0.01,
            "p95_ms": pytest.approx(100.0, rel=0.01),
            "kpi_min_per_s": 1.0,
            "kpi_window_s": 5.0,
            "min_requests": 1,
            "confidence": 0.95,
            "impact_buckets": 3,
        }

    def test_the_health_track_covers_baseline_and_observation(self, tmp_path: Path) -> None:
        """metrics.healthy has a bucket per second from the baseline start to the end, unhealthy where it hurt."""
        m = score(tmp_path, failing_and_half_kpi(range(62, 72)))
        assert m.healthy.t[0] == T0 + 10 and m.healthy.t[-1] == T0 + 119
        assert m.healthy.dt.tolist() == [1.0] * 110
        assert [int(t - T0) for t in m.healthy.t[~m.healthy.healthy]] == list(range(62, 72))

    def test_impact_in_the_bucket_where_the_fault_starts_is_immediate(self, tmp_path: Path) -> None:
        """The bucket in which the fault starts (60-61 for a fault at 60.5) is observed: impact at 0 s."""
        m = score(tmp_path, bad(range(60, 65)))
        assert (m.time_to_impact_s, m.recovery_time_s, m.downtime_s) == (0.0, 4.5, 5.0)

    @pytest.mark.parametrize(
        ("unhealthy", "impact_buckets", "recovery_time_s"),
        [
            ([*range(62, 67), *range(70, 73)], 3, 12.5),  # a 3 s healthy run between impacts does not count
            ([62, 63, 64, 80, 81, 82], 3, 22.5),  # nor does a 15 s run that ends in an impact
            ([62, 63, 64, 117, 118, 119], 3, None),  # an impact in the last observed buckets: not recovered
            ([*range(62, 67), 70, 71], 3, 6.5),  # two bad buckets after the impact are no impact: no reset
            ([*range(62, 67), 70, 71], 1, 11.5),  # with impact_buckets 1 every bad bucket resets
            ([62, 63, 64, 119], 3, 4.5),  # nor is a lone bad bucket at the end
            ([*range(62, 72, 2)], 1, 10.5),  # alternating, every bucket counting
        ],
        ids=[
            "short-run",
            "long-run-then-impact",
            "impact-at-the-end",
            "short-bad-run",
            "k1",
            "lone-at-the-end",
            "alternating-k1",
        ],
    )
    def test_flapping_recovers_at_the_start_of_the_final_stable_run(
        self, tmp_path: Path, unhealthy: list, impact_buckets: int, recovery_time_s: float | None
    ) -> None:
        """Recovery is the start of the run after which no impact (k unhealthy buckets in a row) follows."""
        settings = ScoringSettings(policy=HealthPolicy(impact_buckets=impact_buckets), horizon_s=OBSERVED_S)
        m = score(tmp_path, bad(unhealthy), settings=settings)
        assert m.recovery_time_s == recovery_time_s
        assert m.downtime_s == float(len(unhealthy))  # every unhealthy bucket is downtime, impact or not
        assert m.time_to_impact_s == 1.5

    def test_alternating_buckets_are_no_impact_but_cost_availability(self, tmp_path: Path) -> None:
        """Every other bucket unhealthy never makes k in a row: no impact, recovery 0, yet 5 s of downtime."""
        m = score(tmp_path, bad(range(62, 72, 2)))
        assert (m.time_to_impact_s, m.recovery_time_s, m.downtime_s) == (None, 0.0, 5.0)
        assert m.availability == 0.916667


class TestNoRecovery:
    def test_unhealthy_to_the_end_is_not_recovered_and_costs_the_full_recovery_penalty(
        self, tmp_path: Path
    ) -> None:
        """Never healthy again: recovery null, the fault window runs to the end, 40 points lost for it."""
        m = score(tmp_path, bad(range(62, 120)))
        assert (m.recovery_time_s, m.recovery_after_fault_end_s, m.recovered_t) == (None, None, None)
        assert (m.downtime_s, m.availability, m.failed_requests) == (58.0, 0.033333, 580)
        assert m.latency_ms["recovery"] == {"p50": None, "p95": None, "p99": None}
        assert m.latency_ms["fault"]["p99"] == pytest.approx(50.0, rel=0.01)
        assert m.score_breakdown["recovery"] == 40.0
        assert m.resilience_score == 15.8  # 100 - 40 - 25 x 58/60 - 20

    @pytest.mark.parametrize(("stability_s", "recovery_time_s"), [(10.0, None), (8.0, 51.5), (5.0, 51.5)])
    def test_a_stable_run_cut_short_by_the_end_is_not_enough_observation(
        self, tmp_path: Path, stability_s: float, recovery_time_s: float | None
    ) -> None:
        """Healthy from 112 s to the end (8 s): recovered only if the stability window is 8 s or less."""
        m = score(tmp_path, bad(range(62, 112)), settings=ScoringSettings(stability_s=stability_s))
        assert m.recovery_time_s == recovery_time_s

    def test_a_bucket_cut_short_by_the_end_is_not_observed(self, tmp_path: Path) -> None:
        """With the end at 119.5 s, the bucket 119-120 is left out: a partial bucket would look like a stall."""
        m = score(tmp_path, at=phases(end_s=119.5))
        assert m.requests == 59 * 30 and m.recovery_time_s == 0.0


class TestStall:
    def test_buckets_where_nothing_completed_are_unhealthy(self, tmp_path: Path) -> None:
        """A total stall (tick lines only, or no line at all) is downtime, not missing data."""
        settings = ScoringSettings(policy=HealthPolicy(kpi_drop=1.0))  # judge the stall alone, not the KPI
        m = score(tmp_path, stalled=range(62, 66), missing=[66], settings=settings)
        assert (m.time_to_impact_s, m.recovery_time_s, m.downtime_s) == (1.5, 6.5, 5.0)
        assert (m.requests, m.peak_error_rate) == (1650, 0.0)  # stalled buckets have no error rate

    def test_with_the_default_policy_the_kpi_window_extends_a_stall(self, tmp_path: Path) -> None:
        """The 5 s KPI window is still below half the baseline rate for two seconds after the stall ends."""
        m = score(tmp_path, stalled=range(62, 67))
        assert (m.time_to_impact_s, m.recovery_time_s, m.downtime_s) == (1.5, 8.5, 7.0)


class TestLatencyOnlyImpact:
    def test_slow_corrected_latency_alone_is_impact(self, tmp_path: Path) -> None:
        """Requests that all succeed but waited 900 ms (corrected) for 5 s: unhealthy by p95, penalised on latency."""
        slow = {s: {"catalog": {"corrected_ms": 900.0}} for s in range(62, 67)}
        m = score(tmp_path, slow)
        assert (m.time_to_impact_s, m.recovery_time_s, m.downtime_s, m.error_rate) == (1.5, 6.5, 5.0, 0.0)
        assert m.latency_ms["fault"] == {
            "p50": pytest.approx(50.0, rel=0.01),
            "p95": pytest.approx(900.0, rel=0.01),
            "p99": pytest.approx(900.0, rel=0.01),
        }
        assert m.latency_uncorrected_ms["fault"]["p99"] == pytest.approx(50.0, rel=0.01)
        assert m.latency_ms["baseline"] == m.latency_uncorrected_ms["baseline"]
        assert m.latency_ms["baseline"]["p95"] == pytest.approx(50.0, rel=0.01)
        assert m.peak_p99_ms == pytest.approx(900.0, rel=0.01)
        assert m.score_breakdown["latency"] == 10.0  # peak p99 ≥ twice the p95 threshold (~100 ms)


class TestAppliedWindow:
    """The applied window: from the fault start to its undo, whatever the impact and recovery."""

    def test_a_slow_fault_without_impact_is_measured_while_applied(self, tmp_path: Path) -> None:
        """90 ms while the fault is applied stays under the ~100 ms health limit: no impact, an empty
        fault window, yet the applied window's p95 shows what users met (the release-gate case)."""
        slow = {s: {"catalog": {"corrected_ms": 90.0, "latency_ms": 90.0}} for s in range(60, 71)}
        m = score(tmp_path, slow)
        assert (m.time_to_impact_s, m.recovery_time_s) == (None, 0.0)
        assert m.latency_ms["fault"] == {"p50": None, "p95": None, "p99": None}
        assert m.latency_ms["applied"]["p95"] == pytest.approx(90.0, rel=0.01)
        assert m.latency_uncorrected_ms["applied"]["p95"] == pytest.approx(90.0, rel=0.01)
        assert m.latency_ms["baseline"]["p95"] == pytest.approx(50.0, rel=0.01)
        # buckets 60 (where the fault starts) to 70 (where it is undone, at 70.2 s): 11 of 30 requests
        assert m.applied == {"duration_s": 9.7, "requests": 330, "failed_requests": 0, "error_rate": 0.0}

    def test_failures_after_the_undo_are_not_counted_as_applied(self, tmp_path: Path) -> None:
        """Failures at 62-64 s (fault applied) count; those at 80-84 s (after the undo at 70.2 s) do not."""
        m = score(tmp_path, bad([62, 63, 64, 80, 81, 82, 83, 84]))
        assert m.applied["failed_requests"] == 30
        assert m.applied["error_rate"] == pytest.approx(30 / 330, abs=1e-6)
        assert m.failed_requests == 80  # the horizon counts both

    def test_a_fault_undone_within_its_bucket_is_still_measured(self, tmp_path: Path) -> None:
        """A kill that starts and ends in the same second: the bucket it happened in is the applied window."""
        m = score(tmp_path, at=phases(fault_s=60.5, fault_end_s=60.5))
        assert m.applied == {"duration_s": 0.0, "requests": 30, "failed_requests": 0, "error_rate": 0.0}
        assert m.latency_ms["applied"]["p50"] is not None


class TestKpiOnlyImpact:
    def test_no_subscriptions_is_impact_even_when_every_request_succeeds(self, tmp_path: Path) -> None:
        """KPI at zero for 10 s: the 5 s KPI rate is below half the baseline from 64 s to 73 s."""
        m = score(tmp_path, {s: {"purchase": {"kpi": 0}} for s in range(62, 72)})
        assert (m.time_to_impact_s, m.recovery_time_s, m.recovery_after_fault_end_s) == (3.5, 13.5, 3.8)
        assert (m.downtime_s, m.error_rate, m.kpi) == (10.0, 0.0, 100)
        assert m.kpi_lost == 20.0  # fault window 60-74 (14 s) expected 28, delivered 8


class TestEmptyWindows:
    def test_no_baseline_requests_uses_the_policy_only(self, tmp_path: Path) -> None:
        """A baseline that served nothing: 1 % error threshold, no p95 or KPI criterion, no division by
        zero, and no KPI rate to expect from (kpi_lost null)."""
        m = score(tmp_path, bad(range(62, 72)), stalled=range(0, 60))
        assert m.thresholds == {
            "error_rate": 0.01,
            "p95_ms": None,
            "kpi_min_per_s": None,
            "kpi_window_s": 5.0,
            "min_requests": 1,
            "confidence": 0.95,
            "impact_buckets": 3,
        }
        assert (m.time_to_impact_s, m.recovery_time_s, m.kpi_baseline_per_s, m.kpi_lost) == (
            1.5,
            11.5,
            0.0,
            None,
        )
        assert m.latency_ms["baseline"] == {"p50": None, "p95": None, "p99": None}
        assert m.score_breakdown["latency"] == 0.0

    def test_no_baseline_bucket_leaves_the_kpi_rate_unknown(self, tmp_path: Path) -> None:
        """A baseline that starts with the fault has no duration: KPI rate and KPI lost are null."""
        m = score(tmp_path, at=phases(baseline_s=60.5))
        assert (m.kpi_baseline_per_s, m.kpi_lost, m.recovery_time_s) == (None, None, 0.0)
        assert m.thresholds["error_rate"] == 0.01 and m.thresholds["p95_ms"] is None

    def test_nothing_observed_after_the_fault_is_not_a_recovery(self, tmp_path: Path) -> None:
        """An end inside the fault's first bucket observes nothing: no recovery, rates null, worst-case score."""
        m = score(tmp_path, at=phases(end_s=60.8))
        assert (m.recovery_time_s, m.availability, m.error_rate, m.peak_error_rate, m.peak_p99_ms) == (
            None,
            None,
            None,
            None,
            None,
        )
        assert (m.requests, m.downtime_s, m.kpi, m.kpi_lost) == (0, 0.0, 0, 0.0)
        assert m.resilience_score == 5.0

    def test_an_empty_timeline_scores_without_error(self, tmp_path: Path) -> None:
        """A timeline with no bucket at all still gives metrics: all unmeasured, the worst penalties (no p95 to judge)."""
        series = load_series(write_lines(tmp_path / "t.jsonl", [HEADER]))
        m = score_scenario(series, phases(), ScoringSettings())
        assert (m.requests, m.recovery_time_s, m.kpi_baseline_per_s, m.resilience_score) == (
            0,
            None,
            None,
            15.0,
        )


class TestDataLoss:
    @pytest.mark.parametrize(
        ("data_loss", "resilience_score"),
        [(None, 100.0), (0, 100.0), (1, 45.0), (3, 35.0), (10, 0.0), (25, 0.0)],
    )
    def test_lost_writes_cap_the_score_at_50_and_cost_5_each(
        self, tmp_path: Path, data_loss: int | None, resilience_score: float
    ) -> None:
        """Any lost acknowledged write caps the score at 50, then 5 points per write, down to 0."""
        m = score(tmp_path, data_loss=data_loss)
        assert (m.data_loss, m.resilience_score) == (data_loss, resilience_score)
        assert m.score_breakdown["data_loss"] == 100.0 - resilience_score

    def test_a_failed_check_of_acknowledged_writes_costs_points(self, tmp_path: Path) -> None:
        """data_loss null because the check failed caps the score at 50; null with no check asked costs nothing."""
        assert score(tmp_path, data_loss=None).resilience_score == 100.0
        m = score(tmp_path, data_loss=None, data_loss_unverified=True)
        assert (m.data_loss, m.resilience_score, m.score_breakdown["data_loss"]) == (None, 50.0, 50.0)


class TestHorizon:
    """Availability, error rate, downtime and KPI lost count over a window fixed from the fault start."""

    def test_a_late_flapping_recovery_scores_worse_than_one_clean_outage(self, tmp_path: Path) -> None:
        """Flapping until 84 s (observed to 120 s) against a clean 10 s outage (the engine stopped at
        recovery + stability, 82 s): over a fixed horizon the flapper is worse on every rate; over
        the observation, as before, it looked better."""
        (tmp_path / "clean").mkdir()
        (tmp_path / "flap").mkdir()
        flapping = [*range(62, 67), *range(70, 74), *range(78, 81), 84]
        every_bucket = ScoringSettings(
            policy=HealthPolicy(impact_buckets=1), horizon_s=OBSERVED_S
        )  # the lone bad bucket at 84 s counts
        clean = score(tmp_path / "clean", bad(range(62, 72)), at=phases(end_s=82.0), settings=every_bucket)
        flap = score(tmp_path / "flap", bad(flapping), settings=every_bucket)
        assert clean.recovery_time_s == 11.5 and flap.recovery_time_s == 24.5
        assert flap.availability < clean.availability
        assert flap.error_rate > clean.error_rate
        assert flap.downtime_s > clean.downtime_s
        assert flap.resilience_score < clean.resilience_score
        assert (clean.availability, flap.availability) == (round(50 / 60, 6), round(47 / 60, 6))
        # Over the observation, as before: the clean outage's window ended at 82 s.
        until_the_end = ScoringSettings(policy=HealthPolicy(impact_buckets=1), horizon_s=82.0 - 60.5)
        (tmp_path / "old").mkdir()
        old_clean = score(tmp_path / "old", bad(range(62, 72)), at=phases(end_s=82.0), settings=until_the_end)
        assert old_clean.availability < flap.availability and old_clean.error_rate > flap.error_rate

    def test_the_unobserved_rest_counts_as_healthy_after_a_recovery(self, tmp_path: Path) -> None:
        """Observed to 82 s, horizon to 120 s: the last 38 s count healthy, at the baseline's 30 requests/s without failures."""
        m = score(tmp_path, bad(range(62, 72)), at=phases(end_s=82.0))
        assert (m.downtime_s, m.availability, m.horizon_s) == (10.0, 0.833333, OBSERVED_S)
        assert (m.requests, m.failed_requests) == (22 * 30, 100)  # observed only
        assert m.error_rate == round(100 / (22 * 30 + 38 * 30), 6)
        full = score(tmp_path, bad(range(62, 72)))  # the same trial observed through the horizon
        assert (full.availability, full.error_rate, full.downtime_s) == (
            m.availability,
            m.error_rate,
            m.downtime_s,
        )

    def test_the_unobserved_rest_counts_as_down_without_a_recovery(self, tmp_path: Path) -> None:
        """A run cut short while unhealthy (observed to 75 s): the rest of the horizon is downtime."""
        m = score(tmp_path, bad(range(62, 75)), at=phases(end_s=75.0))
        assert m.recovery_time_s is None
        assert (m.downtime_s, m.availability) == (13.0 + 45.0, round(2 / 60, 6))
        assert m.error_rate == round(130 / (15 * 30), 6)  # the observed part's rate stands for the rest

    def test_buckets_observed_after_the_horizon_do_not_count(self, tmp_path: Path) -> None:
        """With a 20 s horizon, failures at 90-94 s are in the observation (recovery) but not in the rates."""
        m = score(tmp_path, bad([*range(62, 66), *range(90, 95)]), settings=ScoringSettings(horizon_s=20.0))
        assert m.recovery_time_s == 34.5  # recovery still judges the whole observation
        assert (m.downtime_s, m.requests, m.failed_requests) == (4.0, 20 * 30, 40)
        assert m.availability == 0.8

    def test_the_latency_term_does_not_grow_with_a_longer_observation(self, tmp_path: Path) -> None:
        """The same fault observed for 39.5 s and for 3x as long (a lone slow request at 150 s): the
        score's p99 (over the horizon) and latency term are the same; the worst bucket p99 is not."""
        path = scenario(
            tmp_path / "timeline.jsonl",
            seconds=240,
            overrides={s: {"catalog": {"corrected_ms": 150.0}} for s in range(62, 67)},
        )
        lines = path.read_text().splitlines()
        spike = {**CATALOG, "name": "rare", "requests": 1, "latency_ms": 3000.0}
        lines.insert(-1, json.dumps(bucket(T0 + 150, spike).to_line(), separators=(",", ":")))
        path.write_text("\n".join(lines) + "\n")
        series, settings = load_series(path), ScoringSettings(horizon_s=39.5)
        short = score_scenario(series, phases(end_s=100.0), settings)
        long = score_scenario(series, phases(end_s=60.5 + 3 * 39.5), settings)
        assert short.recovery_time_s == long.recovery_time_s == 6.5
        assert long.peak_p99_ms == pytest.approx(3000.0, rel=0.01)
        assert short.peak_p99_ms is not None and short.peak_p99_ms < 200.0
        assert long.horizon_p99_ms == short.horizon_p99_ms == pytest.approx(150.0, rel=0.01)
        assert (
            long.score_breakdown["latency"] == short.score_breakdown["latency"] == pytest.approx(5.0, abs=0.1)
        )
        assert long.resilience_score == short.resilience_score

    def test_kpi_lost_is_unbiased_under_noise_alone(self, tmp_path: Path) -> None:
        """Poisson KPI (2/s) and no fault, 200 seeded trials (back to back on one timeline of
        purchases, 120 s each): kpi_lost averages about 0 (within 4 standard errors) and is negative
        about as often as positive; clipped at 0, as before, it averaged far above 0."""
        trials, rng = 200, np.random.default_rng(20261203)
        templates = {k: bucket(T0, {**PURCHASE, "kpi": k}).to_line() for k in range(40)}
        lines = [
            HEADER,
            *({**templates[int(k)], "t": T0 + s} for s, k in enumerate(rng.poisson(2.0, size=120 * trials))),
        ]
        series = load_series(write_lines(tmp_path / "t.jsonl", lines))
        values = []
        for trial in range(trials):
            at = phases(*(120.0 * trial + offset for offset in (10.0, 60.5, 70.2, 120.0)))
            values.append(score_scenario(series, at, ScoringSettings(horizon_s=OBSERVED_S)).kpi_lost)
        lost = np.array(values)
        standard_error = lost.std(ddof=1) / np.sqrt(lost.size)
        assert abs(lost.mean()) < 4 * standard_error
        assert 0.35 < (lost < 0).mean() < 0.65
        assert np.maximum(lost, 0.0).mean() > 4 * standard_error  # what clipping reported

    def test_a_negative_kpi_lost_is_kept(self, tmp_path: Path) -> None:
        """More sign-ups than the baseline rate predicts (users catching up): kpi_lost is negative, not 0."""
        m = score(tmp_path, {s: {"purchase": {"kpi": 4}} for s in range(70, 80)})
        assert m.kpi_lost == -20.0


class TestResultShape:
    def test_to_dict_has_exactly_the_result_json_keys(self, tmp_path: Path) -> None:
        """to_dict() gives the metric names of result.json, plain JSON values, and not the per-bucket health."""
        d = score(tmp_path, bad(range(62, 72))).to_dict()
        assert set(d) == KEYS
        assert (
            set(d["latency_ms"])
            == set(d["latency_uncorrected_ms"])
            == {"baseline", "applied", "fault", "recovery"}
        )
        assert json.loads(json.dumps(d)) == d

    def test_scoring_is_deterministic(self, tmp_path: Path) -> None:
        """The same files scored twice give identical metrics, byte for byte."""
        path = scenario(tmp_path / "t.jsonl", overrides=failing_and_half_kpi(range(62, 80)), stalled=[85])
        first = score_scenario(load_series(path), phases(), ScoringSettings(), data_loss=1).to_dict()
        second = score_scenario(load_series(path), phases(), ScoringSettings(), data_loss=1).to_dict()
        assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)

    def test_cost_follows_the_plans_hourly_figure(self, tmp_path: Path) -> None:
        """downtime_cost_usd is cost_per_hour_usd x downtime_s / 3600, in dollars and cents."""
        m = score(tmp_path, bad(range(62, 71)), settings=ScoringSettings(cost_per_hour_usd=1000.0))
        assert (m.downtime_s, m.downtime_cost_usd) == (9.0, 2.5)

    @pytest.mark.parametrize(
        "kwargs", [{"stability_s": -1.0}, {"cost_per_hour_usd": -5.0}, {"target_recovery_s": 0.0}]
    )
    def test_settings_out_of_range_are_refused(self, kwargs: dict) -> None:
        """Impossible settings raise ValueError naming the setting."""
        with pytest.raises(ValueError, match=next(iter(kwargs))):
            ScoringSettings(**kwargs)


class TestGeneratorLateness:
    """The load generator's own lateness is reported over the observation and judges nothing."""

    LATE = {65: {"catalog": {"gen_late": 6, "gen_lag_max_ms": 320.5}}, 66: {"purchase": {"gen_late": 3}}}

    def test_late_share_and_largest_lag_over_the_observation(self, tmp_path: Path) -> None:
        """9 late sends of 1,800 observed requests; lateness in the baseline is not counted."""
        overrides = {**self.LATE, 30: {"catalog": {"gen_late": 20, "gen_lag_max_ms": 900.0}}}
        m = score(tmp_path, overrides=overrides)
        assert m.requests == 60 * 30
        assert m.generator_late_share == round(9 / 1800, 6)
        assert m.generator_lag_max_ms == 320.5
        assert m.to_dict()["generator_late_share"] == round(9 / 1800, 6)

    def test_health_and_score_do_not_change(self, tmp_path: Path) -> None:
        """Late sends, however many, leave every other metric as it was."""
        (tmp_path / "a").mkdir()
        (tmp_path / "b").mkdir()
        plain = score(tmp_path / "a", overrides=bad(range(62, 66))).to_dict()
        late = {s: {"catalog": {"gen_late": 20, "gen_lag_max_ms": 2000.0}} for s in range(60, 120)}
        overrides = {**late, **{s: {"catalog": {"failures": 10, "gen_late": 20}} for s in range(62, 66)}}
        lateful = score(tmp_path / "b", overrides=overrides).to_dict()
        assert lateful.pop("generator_late_share") == round(20 * 60 / 1800, 6)
        assert lateful.pop("generator_lag_max_ms") == 2000.0
        assert (plain.pop("generator_late_share"), plain.pop("generator_lag_max_ms")) == (0.0, 0.0)
        assert lateful == plain

    def test_a_timeline_recorded_before_the_fields_scores_identically(self, tmp_path: Path) -> None:
        """Bucket lines without gen_late and gen_lag_max_ms: the same metrics, with 0 lateness."""
        path = scenario(tmp_path / "new.jsonl", overrides=bad(range(62, 66)))
        old_lines = []
        for text in path.read_text().splitlines():
            line = json.loads(text)
            if line["type"] == "bucket":
                del line["gen_late"], line["gen_lag_max_ms"]
            old_lines.append(line)
        old = write_lines(tmp_path / "old.jsonl", old_lines)
        assert '"gen_late"' not in old.read_text()
        got = score_scenario(load_series(old), phases(), ScoringSettings()).to_dict()
        want = score_scenario(load_series(path), phases(), ScoringSettings()).to_dict()
        assert got == want
        assert (got["generator_late_share"], got["generator_lag_max_ms"]) == (0.0, 0.0)

    def test_nothing_observed_leaves_them_unknown(self, tmp_path: Path) -> None:
        """Without observed requests there is no share, and without observed buckets no largest lag."""
        path = write_lines(tmp_path / "t.jsonl", [HEADER])
        m = score_scenario(load_series(path), phases(), ScoringSettings())
        assert (m.generator_late_share, m.generator_lag_max_ms) == (None, None)


class TestRecoveryWatch:
    def test_asked_every_second_it_agrees_with_score_scenario_also_after_a_late_baseline_delta(
        self, tmp_path: Path
    ) -> None:
        """The watch keeps the baseline's thresholds, but a late delta for a baseline bucket resolves them again."""
        from harness.timeline import TimelineFile
        from tests.scoring.timelines import CATALOG, bucket

        slow = {s: {"catalog": {"corrected_ms": 300.0}} for s in range(61, 80)}
        path = scenario(tmp_path / "timeline.jsonl", overrides=slow)
        live = TimelineFile(path)
        live.update()
        watch = RecoveryWatch(phases(), ScoringSettings())
        for end_s in (70.0, 85.0, 100.0, 120.0):
            at = phases(end_s=end_s)
            want = score_scenario(live.series(), at, ScoringSettings()).recovered_t
            assert watch.recovered(live.series(), at.end_t) == want
        assert want is not None and want > T0 + 75, "slow corrected latency was impact"
        with path.open("a") as fh:  # a worker's late report: the baseline was slow too
            for s in range(10, 60):
                fh.write(
                    json.dumps(bucket(T0 + s, {**CATALOG, "requests": 200, "latency_ms": 900.0}).to_line())
                    + "\n"
                )
        live.update()
        want = score_scenario(live.series(), phases(), ScoringSettings()).recovered_t
        assert watch.recovered(live.series(), phases().end_t) == want == phases().fault_start_t


class TestPooledThresholds:
    def test_one_trial_gives_its_own_thresholds(self, tmp_path: Path) -> None:
        """Pooling a single trial's baseline resolves what scoring it alone resolves."""
        series = load_series(scenario(tmp_path / "t.jsonl", overrides=bad(range(62, 72))))
        own = score_scenario(series, phases(), ScoringSettings()).thresholds
        assert pooled_thresholds(HealthPolicy(), [(series, phases())]).to_dict() == own

    def test_the_pool_is_every_trials_baseline_together(self, tmp_path: Path) -> None:
        """A clean baseline and one failing a third of its requests: a sixth pooled, a third the threshold."""
        clean = load_series(scenario(tmp_path / "a.jsonl"))
        failing = load_series(scenario(tmp_path / "b.jsonl", overrides=bad(range(10, 61))))
        limits = pooled_thresholds(HealthPolicy(), [(clean, phases()), (failing, phases())])
        assert limits.error_rate == pytest.approx(2 * (10 * 50) / (30 * 50 * 2))
        assert limits.kpi_min_per_s == pytest.approx(1.0)

    def test_thresholds_given_are_the_scale(self, tmp_path: Path) -> None:
        """score_scenario with `limits` judges by them, not by the trial's own baseline."""
        series = load_series(scenario(tmp_path / "t.jsonl", overrides=bad(range(62, 72), failures=3)))
        assert score_scenario(series, phases(), ScoringSettings()).downtime_s == 10.0
        loose = pooled_thresholds(HealthPolicy(error_rate=0.5), [(series, phases())])
        assert score_scenario(series, phases(), ScoringSettings(), limits=loose).downtime_s == 0.0

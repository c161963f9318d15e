"""Buckets judged on evidence: one failed request is no outage, noise is no impact, an outage still is.

The simulations build Series directly (60 requests a 1 s bucket, binomial failures, seeded), so a
thousand scenarios score in about a second; the timelines of tests.scoring.timelines cover the
file path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.scoring import (
    HealthPolicy,
    Phases,
    RecoveryWatch,
    ScoringSettings,
    health,
    phases_from_markers,
    score_scenario,
)
from harness.store import rundir
from harness.timeline import load_series
from harness.timeline.series import LatencySeries, Series
from tests.scoring.timelines import T0, bad, phases, scenario

OLD_RULES = HealthPolicy(confidence=0.5, impact_buckets=1)
"""Raw rates, every unhealthy bucket an impact: how buckets were judged before evidence."""

SIM_PHASES = Phases(baseline_start_t=T0 + 10, fault_start_t=T0 + 30.5, fault_end_t=T0 + 40.5, end_t=T0 + 90)
"""A 20 s baseline (the plan's default), the fault at 30.5 s, the end at 90 s."""


def simulated(
    rng: np.random.Generator,
    failure_rate: float,
    outage: tuple[int, int, float] | None = None,
    seconds: int = 90,
    requests: int = 60,
) -> Series:
    """A Series of `requests` a second failing at `failure_rate` (from second a to b at r: `outage`); no latency or KPI."""
    rate = np.full(seconds, failure_rate)
    if outage is not None:
        rate[outage[0] : outage[1]] = outage[2]
    count = np.full(seconds, requests, dtype=np.int64)
    zeros = np.zeros(seconds, dtype=np.int64)
    nan = np.full(seconds, np.nan)
    latency = LatencySeries(0.01, zeros, nan, nan, nan, (), 0, 0)
    return Series(
        t=T0 + np.arange(seconds, dtype=np.float64),
        dt=np.ones(seconds),
        requests=count,
        failures=rng.binomial(count, rate).astype(np.int64),
        kpi=zeros,
        users=zeros,
        gen_late=zeros,
        gen_lag_max_ms=np.zeros(seconds),
        latency=latency,
        latency_corrected=latency,
        bucket_s=1.0,
    )


def false_impact_share(policy: HealthPolicy, runs: int = 1000, within_s: float = 20.0) -> float:
    """Share of seeded clean scenarios (0.1 % failures) with an impact within `within_s` of the fault start."""
    rng = np.random.default_rng(20261203)
    settings = ScoringSettings(policy=policy)
    hits = 0
    for _ in range(runs):
        m = score_scenario(simulated(rng, 0.001), SIM_PHASES, settings)
        hits += m.time_to_impact_s is not None and m.time_to_impact_s <= within_s
    return hits / runs


class TestOneFailedRequest:
    def test_one_failed_request_in_a_clean_timeline_is_no_impact(self, tmp_path: Path) -> None:
        """One failure among 30 requests: the bucket is healthy, no impact, recovery 0; only the error rate counts it."""
        series = load_series(scenario(tmp_path / "t.jsonl", overrides=bad([75], failures=1)))
        m = score_scenario(series, phases(), ScoringSettings())
        assert (m.time_to_impact_s, m.recovery_time_s, m.availability) == (None, 0.0, 1.0)
        # the errors term: one failure over the horizon's requests (90 s at 30 a second), 20 x (1/2700) / 0.05
        assert m.score_breakdown == {
            "recovery": 0.0,
            "availability": 0.0,
            "errors": 0.15,
            "latency": 0.0,
            "data_loss": 0.0,
        }
        # the failure happened, and costs what it weighs
        assert m.resilience_score == 99.9

    def test_under_the_old_rules_the_same_failure_was_an_outage(self, tmp_path: Path) -> None:
        """Judged on raw rates with every bad bucket an impact, that failure cost 7.6 points: the noise now removed."""
        series = load_series(scenario(tmp_path / "t.jsonl", overrides=bad([75], failures=1)))
        m = score_scenario(series, phases(), ScoringSettings(policy=OLD_RULES))
        assert (m.time_to_impact_s, m.recovery_time_s, m.resilience_score) == (14.5, 15.5, 92.4)

    def test_one_bad_bucket_is_no_impact_but_costs_its_second_of_availability(self, tmp_path: Path) -> None:
        """A bucket that clearly failed (a third of requests), alone: downtime 1 s, yet no impact and recovery 0."""
        series = load_series(scenario(tmp_path / "t.jsonl", overrides=bad([75])))
        m = score_scenario(series, phases(), ScoringSettings())
        assert (m.time_to_impact_s, m.recovery_time_s, m.downtime_s) == (None, 0.0, 1.0)

    def test_a_short_stall_is_unhealthy_and_a_long_one_an_impact(self, tmp_path: Path) -> None:
        """Nothing completed is unhealthy whatever the evidence (load is running); 3 s of it make an impact."""
        judge = ScoringSettings(policy=HealthPolicy(kpi_drop=1.0))  # the stall alone, not the KPI
        short = score_scenario(load_series(scenario(tmp_path / "a.jsonl", stalled=[70, 71])), phases(), judge)
        long = score_scenario(
            load_series(scenario(tmp_path / "b.jsonl", stalled=[70, 71, 72])), phases(), judge
        )
        assert (short.time_to_impact_s, short.downtime_s) == (None, 2.0)
        assert (long.time_to_impact_s, long.recovery_time_s, long.downtime_s) == (9.5, 12.5, 3.0)


class TestBackgroundNoise:
    def test_false_impact_within_20_s_is_rare_at_0_1_percent_failures(self) -> None:
        """1,000 clean scenarios at 60 requests a bucket and 0.1 % failures: at most 1 % have an impact within 20 s."""
        assert false_impact_share(HealthPolicy()) <= 0.01

    def test_under_the_old_rules_most_clean_scenarios_had_an_impact(self) -> None:
        """The same scenarios on raw rates, every bad bucket an impact: about 70 % (1 - 0.999^60 a bucket, 20 buckets)."""
        assert 0.6 <= false_impact_share(OLD_RULES) <= 0.8


class TestRealOutage:
    @pytest.mark.parametrize("seed", range(20))
    def test_an_outage_is_found_within_a_bucket_of_the_truth(self, seed: int) -> None:
        """30 % failures from 35 s to 45 s over 0.1 % noise: impact at 4.5 s, recovery at 14.5 s (one bucket's slack)."""
        series = simulated(np.random.default_rng(seed), 0.001, outage=(35, 45, 0.3))
        settings = ScoringSettings()
        m = score_scenario(series, SIM_PHASES, settings)
        assert m.time_to_impact_s is not None and 4.5 <= m.time_to_impact_s <= 5.5
        assert m.recovery_time_s is not None and 14.5 <= m.recovery_time_s <= 15.5
        assert RecoveryWatch(SIM_PHASES, settings).recovered(series, SIM_PHASES.end_t) == m.recovered_t


class TestFalseAlarmRate:
    def test_the_baseline_buckets_judged_unhealthy_are_reported(self, tmp_path: Path) -> None:
        """Two of the 50 baseline buckets stalled (no fault ran): a false-alarm rate of 4 %."""
        series = load_series(scenario(tmp_path / "t.jsonl", stalled=[20, 40]))
        m = score_scenario(series, phases(), ScoringSettings(policy=HealthPolicy(kpi_drop=1.0)))
        assert m.false_alarm_rate == 0.04
        assert m.to_dict()["false_alarm_rate"] == 0.04

    def test_a_clean_baseline_has_none_and_no_baseline_has_no_rate(self, tmp_path: Path) -> None:
        """A quiet baseline is 0; a baseline with no bucket is not measured (null)."""
        series = load_series(scenario(tmp_path / "t.jsonl", overrides=bad(range(62, 72))))
        assert score_scenario(series, phases(), ScoringSettings()).false_alarm_rate == 0.0
        assert score_scenario(series, phases(baseline_s=60.5), ScoringSettings()).false_alarm_rate is None


class TestOldRules:
    def test_confidence_one_half_judges_every_bucket_as_the_raw_rates_do(self, tmp_path: Path) -> None:
        """At confidence 0.5 a bucket is unhealthy exactly when its raw error rate or raw p95 is over the limit."""
        rng = np.random.default_rng(7)
        overrides = {
            s: {
                "catalog": {
                    "failures": int(rng.choice([0, 1, 2, 3], p=[0.6, 0.2, 0.1, 0.1])),
                    "corrected_ms": float(rng.choice([20.0, 400.0], p=[0.85, 0.15])),
                },
                "purchase": {
                    "requests": int(rng.integers(1, 12)),
                    "corrected_ms": float(rng.choice([50.0, 400.0], p=[0.85, 0.15])),
                },
            }
            for s in range(60)
        }
        series = load_series(scenario(tmp_path / "t.jsonl", seconds=60, overrides=overrides))
        limits = health.Thresholds(0.05, 300.0, None, 5.0, 1, confidence=0.5, impact_buckets=1)
        raw = (series.failures / series.requests <= 0.05) & ~(series.latency_corrected.p95_ms > 300.0)
        assert 10 < int(raw.sum()) < 50, "the draw has both verdicts"
        assert health.healthy(series, limits).tolist() == raw.tolist()


def slow_seconds(counts: dict[int, int], requests: int = 25) -> dict[int, dict[str, dict[str, Any]]]:
    """Overrides giving second s `requests` requests of which counts[s] waited 1,500 ms (KPI unchanged)."""
    return {
        s: {"catalog": {"requests": requests - n}, "purchase": {"requests": n, "latency_ms": 1500.0}}
        for s, n in counts.items()
    }


class TestSustainedDegradation:
    """The recorded game day's zone latency: 2-4 of ~25 requests a second over a 1,000 ms SLO."""

    SLO = HealthPolicy(p95_ms=1000.0)

    def test_a_sustained_8_to_16_percent_slow_share_is_an_impact(self, tmp_path: Path) -> None:
        """15 s of 2, 3, 4 slow of 25: every run of 3 is evidence, pooled; impact and recovery on the fault's edges."""
        counts = {s: (2, 3, 4)[s % 3] for s in range(61, 76)}
        series = load_series(scenario(tmp_path / "t.jsonl", overrides=slow_seconds(counts)))
        fault = phases(fault_end_s=75.2)
        settings = ScoringSettings(policy=self.SLO)
        m = score_scenario(series, fault, settings)
        assert (m.time_to_impact_s, m.recovery_time_s, m.downtime_s) == (0.5, 15.5, 15.0)
        assert RecoveryWatch(fault, settings).recovered(series, fault.end_t) == m.recovered_t
        alone = score_scenario(
            series, fault, ScoringSettings(policy=HealthPolicy(p95_ms=1000.0, impact_buckets=1))
        )
        # alone, only the seconds with 4 of 25 slow are evidence: never two in a row, no impact at k = 3
        assert [int(t - T0) for t in alone.healthy.t[~alone.healthy.healthy]] == [62, 65, 68, 71, 74]

    def test_a_steady_8_percent_is_below_the_evidence_of_3_buckets(self, tmp_path: Path) -> None:
        """2 slow of 25 every second pools to 6 of 75 (lower bound 4.2 %): the price of evidence at this load."""
        series = load_series(
            scenario(tmp_path / "t.jsonl", overrides=slow_seconds(dict.fromkeys(range(61, 76), 2)))
        )
        m = score_scenario(series, phases(fault_end_s=75.2), ScoringSettings(policy=self.SLO))
        assert (m.time_to_impact_s, m.downtime_s) == (None, 0.0)

    def test_one_burst_does_not_carry_its_neighbours(self, tmp_path: Path) -> None:
        """12 of 25 slow in one second beside 1 of 25 (under 5 %): unhealthy alone, 1 s of downtime, no impact."""
        counts = {60: 1, 61: 1, 62: 12, 63: 1, 64: 1}
        series = load_series(scenario(tmp_path / "t.jsonl", overrides=slow_seconds(counts)))
        m = score_scenario(series, phases(), ScoringSettings(policy=self.SLO))
        assert (m.time_to_impact_s, m.recovery_time_s, m.downtime_s) == (None, 0.0, 1.0)

    def test_the_recorded_zone_latency_is_an_impact_again(self) -> None:
        """Scored again, the game day's zone-latency has its impact: the 4, 2, 4 slow of 30, 22, 25 at 5.75 s."""
        run = next((Path(__file__).parent.parent / "fixtures" / "runs").glob("*local-gameday*"))
        sdir = run / "scenarios" / "zone-latency-1"
        fault = phases_from_markers(rundir.read_markers(sdir / "markers.jsonl"))
        settings = ScoringSettings(policy=self.SLO)
        m = score_scenario(load_series(sdir / "timeline.jsonl"), fault, settings)
        assert (m.time_to_impact_s, m.recovery_time_s, m.downtime_s) == (5.752, 8.752, 3.0)

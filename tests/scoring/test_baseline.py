"""The baseline check: each criterion fires on the load it is about and stays silent on noise.

Synthetic timelines (tests/scoring/timelines.py: `catalog` 20 requests and `purchase` 10 requests
with 2 KPI events a second) with a seeded spread of latencies, and the recorded runs' baselines.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from harness import scoring, timeline
from harness.plan import Plan
from harness.scoring import baseline
from harness.scoring.health import HealthPolicy
from harness.store import rundir
from tests.scoring import timelines
from tests.scoring.timelines import T0

FIXTURES = Path(__file__).parents[1] / "fixtures" / "runs"
WINDOW = (T0 + 5, T0 + 25)
"""The baseline judged: 20 one-second buckets."""


def series(
    tmp_path: Path, catalog: dict[int, dict[str, Any]] | None = None, **purchase: Any
) -> timeline.Series:
    """30 s of the two-name scenario; catalog: per second, fields replacing catalog's; purchase:
    fields for every second of purchase. Catalog's corrected latency is spread (seeded) 15-45 ms
    unless given, as a quiet testbed's is."""
    rng = random.Random(7)
    overrides: dict[int, dict[str, dict[str, Any]]] = {}
    for s in range(30):
        fields = {"corrected_ms": rng.uniform(15.0, 45.0), **(catalog or {}).get(s, {})}
        overrides[s] = {"catalog": fields, "purchase": dict(purchase)}
    return timeline.load_series(timelines.scenario(tmp_path / "timeline.jsonl", 30, overrides))


def check(verdict: baseline.Verdict, name: str) -> baseline.Check:
    (found,) = [c for c in verdict.checks if c.name == name]
    return found


def judge(s: timeline.Series, policy: HealthPolicy | None = None, **settings: Any) -> baseline.Verdict:
    return baseline.judge(s, *WINDOW, policy or HealthPolicy(), baseline.BaselineSettings(**settings))


class TestSteady:
    def test_a_quiet_baseline_passes_every_check(self, tmp_path: Path) -> None:
        """Noisy but flat latency, no late requests, no errors, a steady KPI: steady, every check passed."""
        verdict = judge(series(tmp_path))
        assert verdict.steady
        assert [c.name for c in verdict.checks] == [
            "load_running",
            "latency_trend",
            "generator_late_share",
            "errors",
            "latency",
            "kpi",
        ]
        assert all(c.passed for c in verdict.checks)

    def test_the_result_json_shape(self, tmp_path: Path) -> None:
        """`baseline_check` holds steady, went_on and per check name, passed, value, threshold, evidence."""
        data = judge(series(tmp_path)).to_dict(went_on=False)
        assert list(data) == ["steady", "went_on", "checks"]
        assert all(list(c) == ["name", "passed", "value", "threshold", "evidence"] for c in data["checks"])
        json.dumps(data, allow_nan=False)


class TestLoadRunning:
    def test_a_load_that_started_late_fails(self, tmp_path: Path) -> None:
        """A baseline from 40 s before the timeline's first bucket: 40 of its 50 s had no load."""
        s = series(tmp_path)
        running = check(baseline.judge(s, T0 - 40, T0 + 10, HealthPolicy()), "load_running")
        assert not running.passed and running.value == 0.2 and running.threshold == 0.5
        assert "started late" in running.evidence

    def test_a_few_seconds_late_pass(self, tmp_path: Path) -> None:
        """Locust starting 5 s into a 25 s baseline, as on a busy machine, leaves enough to judge."""
        assert check(baseline.judge(series(tmp_path), T0 - 5, T0 + 20, HealthPolicy()), "load_running").passed


class TestLatencyTrend:
    def test_latency_climbing_through_the_baseline_fails(self, tmp_path: Path) -> None:
        """The user's overload: corrected latency climbing from 4 s to 58 s is a trend, with the rise in the evidence."""
        climbing = {s: {"corrected_ms": 4000.0 + (s - 5) * 2800.0} for s in range(5, 30)}
        trend = check(judge(series(tmp_path, climbing)), "latency_trend")
        assert not trend.passed
        assert trend.value is not None and trend.threshold is not None and trend.value > trend.threshold
        assert "rose" in trend.evidence and "Theil-Sen" in trend.evidence

    def test_a_small_drift_is_not_a_trend(self, tmp_path: Path) -> None:
        """p95 drifting from 30 to 60 ms is significant but less than the health margin (50 ms): silent."""
        drifting = {s: {"corrected_ms": 30.0 + (s - 5) * 1.5} for s in range(5, 30)}
        assert check(judge(series(tmp_path, drifting)), "latency_trend").passed

    def test_one_slow_second_is_not_a_trend(self, tmp_path: Path) -> None:
        """A single slow bucket at the end moves no rank-based slope."""
        assert check(judge(series(tmp_path, {24: {"corrected_ms": 2000.0}})), "latency_trend").passed

    def test_too_few_buckets_are_not_judged(self, tmp_path: Path) -> None:
        """Four buckets cannot show a trend at 99 %: passed, value None, and it says so."""
        s = series(tmp_path, {s: {"corrected_ms": 100.0 * s} for s in range(30)})
        trend = check(baseline.judge(s, T0 + 5, T0 + 9, HealthPolicy()), "latency_trend")
        assert trend.passed and trend.value is None and "not judged" in trend.evidence


class TestGeneratorLate:
    def test_a_generator_behind_its_schedule_fails(self, tmp_path: Path) -> None:
        """22 % of the requests sent late by the generator itself is over the 5 % limit; the evidence gives both."""
        late = {s: {"gen_late": 7, "gen_lag_max_ms": 830.0} for s in range(30)}  # 7 of 30 requests a second
        gen = check(judge(series(tmp_path, late)), "generator_late_share")
        assert not gen.passed and gen.value == pytest.approx(7 / 30, abs=1e-6) and gen.threshold == 0.05
        assert "23.3 %" in gen.evidence and "830 ms" in gen.evidence

    def test_a_few_late_requests_pass(self, tmp_path: Path) -> None:
        """1 late request in 30 (3.3 %) is within the limit."""
        late = {s: {"gen_late": 1, "gen_lag_max_ms": 80.0} for s in range(30)}
        assert check(judge(series(tmp_path, late)), "generator_late_share").passed

    def test_the_limit_comes_from_the_settings(self, tmp_path: Path) -> None:
        """A plan that allows 2 % refuses the 3.3 %."""
        late = {s: {"gen_late": 1} for s in range(30)}
        assert not check(
            judge(series(tmp_path, late), max_generator_late_share=0.02), "generator_late_share"
        ).passed


class TestWithinSlo:
    def test_a_burst_of_errors_in_the_baseline_fails(self, tmp_path: Path) -> None:
        """Three seconds failing half of catalog is an impact with no fault running."""
        burst = {s: {"failures": 10} for s in (12, 13, 14)}
        errors = check(judge(series(tmp_path, burst)), "errors")
        assert not errors.passed and "judged unhealthy on error rate" in errors.evidence

    def test_errors_above_the_plans_slo_fail(self, tmp_path: Path) -> None:
        """1 of 30 requests failing every second is steady, but above an absolute SLO of 1 %."""
        steady_errors = {s: {"failures": 1} for s in range(30)}
        assert check(judge(series(tmp_path, steady_errors)), "errors").passed
        errors = check(judge(series(tmp_path, steady_errors), HealthPolicy(error_rate=0.01)), "errors")
        assert not errors.passed and "above the SLO" in errors.evidence and errors.threshold == 0.01

    def test_a_failing_baseline_without_an_slo_fails(self, tmp_path: Path) -> None:
        """A quarter of the requests failing with no fault running is over the 5 % ceiling, SLO or not."""
        failing = {s: {"failures": 8} for s in range(30)}
        errors = check(judge(series(tmp_path, failing)), "errors")
        assert not errors.passed and errors.threshold == 0.05 and "above the ceiling" in errors.evidence

    def test_latency_above_the_plans_slo_fails(self, tmp_path: Path) -> None:
        """purchase's 50 ms p95 is over a 40 ms SLO in every bucket."""
        latency = check(judge(series(tmp_path), HealthPolicy(p95_ms=40.0)), "latency")
        assert not latency.passed and latency.threshold == 40.0

    def test_a_kpi_drop_in_the_baseline_fails(self, tmp_path: Path) -> None:
        """No subscription for 8 s in the middle of the baseline is a KPI drop."""
        s = timeline.load_series(timelines.scenario(
            tmp_path / "timeline.jsonl", 30, {s: {"purchase": {"kpi": 0}} for s in range(12, 20)}))  # fmt: skip
        kpi = check(baseline.judge(s, *WINDOW, HealthPolicy()), "kpi")
        assert not kpi.passed and "judged unhealthy on KPI rate" in kpi.evidence

    def test_a_stall_fails_the_errors_check(self, tmp_path: Path) -> None:
        """Seconds where nothing completed while users ran are unhealthy: the baseline is not steady."""
        path = timelines.scenario(tmp_path / "timeline.jsonl", 30, stalled=range(10, 14))
        assert not check(baseline.judge(timeline.load_series(path), *WINDOW, HealthPolicy()), "errors").passed


class TestWindow:
    def test_the_engines_marker_ends_the_window(self) -> None:
        """With the engine's check marker, the window is the baseline marker to it."""
        markers = [{"t": 10.0, "kind": "phase", "phase": "baseline"}, {"t": 22.5, "kind": "baseline_check"},
                   {"t": 26.0, "kind": "phase", "phase": "experiment"},
                   {"t": 27.0, "kind": "activity_start", "section": "method", "type": "action", "name": "x"}]  # fmt: skip
        assert baseline.window_from_markers(markers) == (10.0, 22.5)

    def test_older_runs_judge_the_baseline_up_to_the_fault(self) -> None:
        """Without the marker (runs before the check), the window ends at the first method action."""
        markers = [{"t": 10.0, "kind": "phase", "phase": "baseline"},
                   {"t": 26.5, "kind": "activity_start", "section": "method", "type": "probe", "name": "p"},
                   {"t": 27.0, "kind": "activity_start", "section": "method", "type": "action", "name": "x"}]  # fmt: skip
        assert baseline.window_from_markers(markers) == (10.0, 27.0)

    def test_no_baseline_no_window(self) -> None:
        """A scenario stopped before its baseline has nothing to judge."""
        assert baseline.window_from_markers([{"t": 1.0, "kind": "phase", "phase": "warmup"}]) is None


@pytest.mark.parametrize(
    "sdir", sorted(FIXTURES.glob("*/scenarios/*")), ids=lambda p: f"{p.parents[1].name[:24]}/{p.name}"
)
def test_the_recorded_runs_baselines_are_steady(sdir: Path) -> None:
    """Every recorded testbed run's baseline passes every check: the criteria are silent on ordinary noise."""
    plan = Plan.model_validate(rundir.read_json(sdir.parents[1] / "plan.json"))
    settings = scoring.settings_for(plan)
    window = baseline.window_from_markers(rundir.read_markers(sdir / "markers.jsonl"))
    assert window is not None
    verdict = baseline.judge(
        timeline.load_series(sdir / "timeline.jsonl"), *window, settings.policy, settings.baseline
    )
    assert verdict.steady, [c.evidence for c in verdict.failed]
    (entry,) = [
        s
        for s in rundir.read_json(sdir.parents[1] / "result.json")["scenarios"]
        if s["name"] == sdir.name[:-2]
    ]
    assert entry["baseline_check"] == verdict.to_dict(went_on=False)

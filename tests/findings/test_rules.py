"""Each rule fires on the evidence it looks for and stays silent without it (synthetic inputs)."""

from __future__ import annotations

from typing import Any

import pytest

from harness import findings
from harness.result import Finding
from tests.findings.conftest import PLAN, T0, TESTBED, recovery_phases, scenario


def found(
    entry: dict[str, Any], plan: dict[str, Any] | None = None, target: dict[str, Any] | None = None
) -> dict[str, Finding]:
    """The scenario's findings by id."""
    return {f.id: f for f in findings.for_scenario(entry, PLAN if plan is None else plan,
                                                   TESTBED if target is None else target)}  # fmt: skip


def run_found(entries: list[dict[str, Any]], target: dict[str, Any] | None = None) -> dict[str, Finding]:
    return {f.id: f for f in findings.for_run(entries, PLAN, TESTBED if target is None else target)}


class TestHealthy:
    def test_a_healthy_trial_has_no_finding(self) -> None:
        """A trial with no impact, no errors and a steady generator gives nothing to act on."""
        assert found(scenario()) == {}

    def test_a_not_applicable_scenario_has_none(self) -> None:
        """A scenario the target could not run was not measured: no rule reads it."""
        assert found(scenario(status="not-applicable", aborted_by="x", metrics=None)) == {}

    def test_a_bare_entry_is_read_without_error(self) -> None:
        """An entry with nothing but its name (an early crash) gives no finding and no exception."""
        assert found({"name": "x", "trial": 1, "status": "error"}, plan={}, target={}) == {}


class TestClientTimeouts:
    def entry(self, back: float) -> dict[str, Any]:
        return scenario(
            metrics={"time_to_impact_s": 0.0, "recovery_time_s": back},
            recovery_phases=recovery_phases(detected=3.6, rerouted=3.8, users_back=back),
        )

    def test_fires_when_users_are_back_a_timeout_after_rerouting(self) -> None:
        """Rerouted at 3.8 s, users back at 8.9 s with a 5 s timeout: the timeout set recovery."""
        f = found(self.entry(8.9))["client-timeouts-dominate-recovery"]
        assert f.severity == "warning"
        assert "5 s" in f.title and "5.1 s" in f.evidence
        assert (f.t_from, f.t_to) == (T0 + 3.8, T0 + 8.9)
        assert f.expected_effect is not None and f.expected_effect.metric == "recovery_time_s"
        assert f.expected_effect.change == -4.0  # 5 s down to 1 s (3 x 80 ms p99, at least 1 s)

    def test_fires_when_the_last_timeouts_are_too_sparse_to_count(self) -> None:
        """Rerouted at 4.2 s, back at 7.3 s with a 5 s timeout (a zone partition on the testbed): the
        stragglers' timeouts after 7.3 s were too few to keep a bucket unhealthy, but the timeout
        still set the 3.2 s tail; a 1 s timeout saves the tail less the second."""
        entry = scenario(
            metrics={"time_to_impact_s": 0.0, "recovery_time_s": 7.3},
            recovery_phases=recovery_phases(detected=4.2, rerouted=4.2, users_back=7.3),
        )
        f = found(entry)["client-timeouts-dominate-recovery"]
        assert f.expected_effect is not None and f.expected_effect.change == pytest.approx(-2.1)

    def test_silent_when_users_are_back_less_than_half_a_timeout_after_rerouting(self) -> None:
        """Back 2.2 s after the rerouting with a 5 s timeout: something else ended the impact."""
        assert "client-timeouts-dominate-recovery" not in found(self.entry(6.0))

    def test_silent_when_users_are_back_soon_after_rerouting(self) -> None:
        """Back 0.5 s after the rerouting: the timeout played no part."""
        assert "client-timeouts-dominate-recovery" not in found(self.entry(4.3))

    def test_silent_without_the_rerouted_phase(self) -> None:
        """No rerouted time (no source for it): the rule does not guess."""
        entry = scenario(recovery_phases=recovery_phases(rerouted=None, users_back=8.9))
        assert "client-timeouts-dominate-recovery" not in found(entry)

    def test_silent_when_the_timeout_is_already_short(self) -> None:
        """With a 1 s timeout there is nothing shorter to recommend."""
        entry = scenario(recovery_phases=recovery_phases(rerouted=3.8, users_back=4.8))
        assert "client-timeouts-dominate-recovery" not in found(
            entry, plan={"load": {"request_timeout_s": 1.0}}
        )


class TestDetection:
    def test_fires_when_detection_is_the_grace_period_and_most_of_recovery(self) -> None:
        """Detected after 4.1 s of a 6 s recovery, the node grace being 4 s."""
        entry = scenario(metrics={"time_to_impact_s": 0.0, "recovery_time_s": 6.0},
                         recovery_phases=recovery_phases(detected=4.1, rerouted=4.3))  # fmt: skip
        f = found(entry)["detection-dominates-recovery"]
        assert "node grace period (4 s)" in f.evidence and "lb_health_checks: false" in f.recommendation
        assert f.expected_effect is not None and f.expected_effect.change == -2.0

    def test_the_effect_gives_back_the_timeout_tail_that_grows(self) -> None:
        """Detected and rerouted at 3.7 s, users back at 7.1 s with a 5 s request timeout (a node
        crash on the testbed): the grace halved reroutes 2 s sooner, but users then wait out more
        of the timeout (the 1.6 s gap before it shrinks in proportion to the rerouting: by 2/3.7 of
        itself), so recovery is about 1.1 s shorter, as measured, not 2 s."""
        entry = scenario(metrics={"time_to_impact_s": 0.0, "recovery_time_s": 7.1},
                         recovery_phases=recovery_phases(detected=3.7, rerouted=3.7, users_back=7.1))  # fmt: skip
        f = found(entry)["detection-dominates-recovery"]
        assert f.expected_effect is not None
        assert f.expected_effect.change == pytest.approx(-(2.0 - 1.6 * 2.0 / 3.7), abs=1e-6)
        assert "about 1.1 s faster" in f.expected_effect.text and "timeout" in f.expected_effect.text

    def test_silent_when_detection_is_a_small_part(self) -> None:
        """Detected after 1.5 s of a 20 s recovery: something else took the time."""
        entry = scenario(metrics={"time_to_impact_s": 0.0, "recovery_time_s": 20.0},
                         recovery_phases=recovery_phases(detected=1.5))  # fmt: skip
        assert "detection-dominates-recovery" not in found(entry)


class TestEviction:
    def test_fires_when_capacity_returns_at_the_toleration(self) -> None:
        """Users back at 9 s, capacity only at 34 s, after the 30 s eviction toleration."""
        entry = scenario(recovery_phases=recovery_phases(users_back=9.0, capacity_restored=34.0))
        f = found(entry, target={**TESTBED, "eviction_s": 30.0})["capacity-reduced-until-eviction"]
        assert "25.0 s" in f.evidence
        # 30 s is already the suggestion (the testbed's scaled-down toleration): a third of it.
        assert f.expected_effect is not None and f.expected_effect.change == -20.0
        assert "for example 10 s" in f.recommendation

    def test_estimates_the_effect_of_a_shorter_toleration(self) -> None:
        """A cluster's 300 s default toleration: capacity would be back 270 s sooner at 30 s."""
        entry = scenario(recovery_phases=recovery_phases(users_back=9.0, capacity_restored=301.0))
        target = {"kind": "kubernetes", "unreachable_toleration_s": 300, "not_ready_toleration_s": 300}
        f = found(entry, target=target)["capacity-reduced-until-eviction"]
        assert f.expected_effect is not None and f.expected_effect.change == -270.0

    def test_silent_when_capacity_came_back_with_the_users(self) -> None:
        """A replica restarted in place: capacity back before the toleration mattered."""
        entry = scenario(recovery_phases=recovery_phases(users_back=9.0, capacity_restored=9.0))
        assert "capacity-reduced-until-eviction" not in found(entry)

    def test_silent_without_a_toleration_fact(self) -> None:
        """A target that does not report its eviction setting: nothing to compare with."""
        entry = scenario(recovery_phases=recovery_phases(users_back=9.0, capacity_restored=34.0))
        assert "capacity-reduced-until-eviction" not in found(entry, target={"kind": "kubernetes"})


class TestRepairBlocked:
    def test_fires_on_blocked_repair_and_names_a_single_member(self) -> None:
        """20.8 s of blocked repair on a one-member etcd: critical, recommending three members."""
        entry = scenario(metrics={"recovery_time_s": 35.7, "time_to_impact_s": 0.0,
                                  "control_plane": {"repair_blocked_s": 20.8, "write_unavailable_s": 22.8}})  # fmt: skip
        f = found(entry, target={**TESTBED, "etcd_members": ["etcd-a"]})["repair-blocked-by-control-plane"]
        assert f.severity == "critical" and "20.8 s" in f.evidence and "etcd-a" in f.recommendation
        assert f.expected_effect is not None and f.expected_effect.change == -20.8

    def test_silent_when_nothing_was_blocked(self) -> None:
        """0 s blocked (etcd kept its quorum)."""
        entry = scenario(metrics={"control_plane": {"repair_blocked_s": 0.0}})
        assert "repair-blocked-by-control-plane" not in found(entry)


class TestRollback:
    def test_fires_when_users_recover_right_after_the_undo(self) -> None:
        """A 40 s fault, users back 41 s after it started: the rollback ended the impact."""
        entry = scenario(metrics={"time_to_impact_s": 0.1, "recovery_time_s": 41.0})
        f = found(entry)["rollback-did-the-recovery"]
        assert "40.0 s" in f.evidence and f.t_to == T0 + 41.0

    def test_silent_when_the_system_recovered_during_the_fault(self) -> None:
        """Users back 7 s into a 40 s fault: the system routed around it."""
        entry = scenario(metrics={"time_to_impact_s": 0.0, "recovery_time_s": 7.4})
        assert "rollback-did-the-recovery" not in found(entry)

    def test_silent_for_a_short_fault(self) -> None:
        """A 5 s fault ends before anything could route around it."""
        entry = scenario(
            phases={"fault_end_t": T0 + 5}, metrics={"time_to_impact_s": 0.0, "recovery_time_s": 5.0}
        )
        assert "rollback-did-the-recovery" not in found(entry)


class TestNotRecovered:
    def test_fires_when_recovery_is_null(self) -> None:
        """A completed trial whose recovery time is null did not recover."""
        entry = scenario(metrics={"time_to_impact_s": 0.0, "recovery_time_s": None})
        assert found(entry)["did-not-recover"].severity == "critical"

    def test_silent_when_recovery_was_not_written(self) -> None:
        """An older result without the metric: not the same as null."""
        entry = scenario()
        del entry["metrics"]["recovery_time_s"]
        assert "did-not-recover" not in found(entry)


class TestRetry:
    def test_fires_on_failures_without_an_impact(self) -> None:
        """3 failed requests and no impact: isolated failures a retry absorbs."""
        entry = scenario(metrics={"failed_requests": 3, "error_rate": 0.0025, "peak_error_rate": 0.04})
        f = found(entry)["errors-a-retry-would-absorb"]
        assert "3 requests failed" in f.evidence
        assert f.expected_effect is not None and f.expected_effect.change == -0.0025

    def test_silent_when_the_failures_made_an_impact(self) -> None:
        """Failures that made an impact are an outage, not isolated errors."""
        entry = scenario(metrics={"failed_requests": 30, "error_rate": 0.025, "time_to_impact_s": 0.0})
        assert "errors-a-retry-would-absorb" not in found(entry)


class TestKpi:
    def test_fires_on_kpi_lost_beyond_chance_without_errors(self) -> None:
        """40 subscriptions short of 120 expected (chance: ±33) with no failed request."""
        f = found(scenario(metrics={"kpi_lost": 40.0}))["kpi-lost-without-errors"]
        assert "40 subscriptions" in f.evidence and "±33" in f.evidence

    def test_silent_within_chance(self) -> None:
        """10 short of 120 is Poisson noise."""
        assert "kpi-lost-without-errors" not in found(scenario(metrics={"kpi_lost": 10.0}))

    def test_silent_when_errors_explain_it(self) -> None:
        """KPI lost with 5 % of requests failing is what errors look like."""
        entry = scenario(metrics={"kpi_lost": 40.0, "error_rate": 0.05, "failed_requests": 60})
        assert "kpi-lost-without-errors" not in found(entry)


class TestLatencyOnly:
    def test_fires_on_an_impact_from_latency_alone(self) -> None:
        """Impact with p95 1147 ms over a 1000 ms threshold and no failed request."""
        entry = scenario(metrics={"time_to_impact_s": 5.8, "recovery_time_s": 8.8,
                                  "latency_ms": {"fault": {"p95": 1147.0}}})  # fmt: skip
        f = found(entry)["latency-only-impact"]
        assert "1147 ms" in f.evidence and (f.t_from, f.t_to) == (T0 + 5.8, T0 + 8.8)

    def test_prefers_latency_while_the_fault_was_applied(self) -> None:
        """latency_ms.applied, when present, is what the fault did."""
        entry = scenario(metrics={"time_to_impact_s": 5.8, "recovery_time_s": 8.8,
                                  "latency_ms": {"fault": {"p95": 900.0}, "applied": {"p95": 1500.0}}})  # fmt: skip
        assert "while the fault was active" in found(entry)["latency-only-impact"].evidence

    def test_silent_when_requests_failed(self) -> None:
        """An impact with errors is not latency-only."""
        entry = scenario(
            metrics={"time_to_impact_s": 0.0, "error_rate": 0.02, "latency_ms": {"fault": {"p95": 4989.0}}}
        )
        assert "latency-only-impact" not in found(entry)


class TestDataLoss:
    def test_fires_on_lost_writes(self) -> None:
        """Two acknowledged writes not readable: critical."""
        f = found(scenario(metrics={"data_loss": 2}))["data-loss"]
        assert f.severity == "critical" and "2 acknowledged writes" in f.evidence

    def test_silent_when_unverified(self) -> None:
        """null data loss (not verified) is not a loss."""
        assert "data-loss" not in found(scenario(metrics={"data_loss": None}))


class TestGenerator:
    def test_fires_on_late_sends(self) -> None:
        """5 % of requests sent late by the generator."""
        f = found(scenario(metrics={"generator_late_share": 0.05}))["generator-lagged"]
        assert "5.00 %" in f.evidence

    def test_fires_on_one_long_stall(self) -> None:
        """One 2.5 s lag of the generator."""
        assert "generator-lagged" in found(scenario(metrics={"generator_lag_max_ms": 2500.0}))

    def test_silent_when_the_generator_kept_up(self) -> None:
        """0.5 % late, 200 ms at most: the figures are about the service."""
        entry = scenario(metrics={"generator_late_share": 0.005, "generator_lag_max_ms": 200.0})
        assert "generator-lagged" not in found(entry)


class TestBaseline:
    CHECKS = [
        {"name": "latency_trend", "passed": False, "value": 0.4, "threshold": 0.2, "evidence": "p95 rising"}
    ]

    def test_fires_when_the_baseline_was_not_steady_and_the_run_went_on(self) -> None:
        """A latency trend in the baseline, the fault injected anyway."""
        entry = scenario(baseline_check={"steady": False, "went_on": True, "checks": self.CHECKS})
        f = found(entry)["baseline-not-steady"]
        assert "latency_trend 0.4 (threshold 0.2): p95 rising" in f.evidence and "anyway" in f.evidence
        assert (f.t_from, f.t_to) == (T0 - 15, T0)

    def test_silent_when_steady_or_unchecked(self) -> None:
        """A steady baseline, or no check at all, says nothing."""
        assert "baseline-not-steady" not in found(
            scenario(baseline_check={"steady": True, "went_on": True, "checks": []})
        )
        assert "baseline-not-steady" not in found(scenario())


class TestNoEffect:
    def test_fires_when_no_activity_took_effect(self) -> None:
        """The fault's one activity was not seen to act."""
        effect = {"outcome": "no-effect-observed", "activities": [
            {"name": "crash-node", "observed": False, "source": "ground-truth", "evidence": "no node went down"}]}  # fmt: skip
        f = found(scenario(fault_effect=effect))["no-effect-observed"]
        assert "crash-node: no node went down (ground-truth)" in f.evidence

    def test_silent_when_an_effect_was_seen_or_unknown(self) -> None:
        """effect-observed and unknown are no finding."""
        for outcome in ("effect-observed", "unknown"):
            entry = scenario(fault_effect={"outcome": outcome, "activities": []})
            assert "no-effect-observed" not in found(entry)


class TestAborted:
    def test_fires_on_an_abort(self) -> None:
        """An abort condition tripped: critical, naming it."""
        f = found(scenario(status="aborted", aborted_by="error_rate > 0.5 for 20 s"))["aborted"]
        assert f.severity == "critical" and "error_rate > 0.5 for 20 s" in f.evidence

    def test_silent_without_one(self) -> None:
        assert "aborted" not in found(scenario())


class TestGateNearThreshold:
    def test_fires_within_five_percent(self) -> None:
        """recovery_time_s < 10 passed with 9.7: 3 % from failing."""
        entry = scenario(gates=[{"expression": "recovery_time_s < 10", "value": 9.7, "passed": True}])
        f = found(entry)["gate-near-threshold"]
        assert "`recovery_time_s < 10` passed with 9.7 (3.0 % from it)" in f.evidence

    def test_silent_for_a_clear_pass_a_failure_or_a_history_gate(self) -> None:
        """A wide margin, a failed gate and a gate with no plain number are not near misses."""
        entry = scenario(gates=[
            {"expression": "recovery_time_s < 10", "value": 2.0, "passed": True},
            {"expression": "error_rate < 0.05", "value": 0.051, "passed": False},
            {"expression": "recovery_time_s <= 1.2 * median_last(5)", "value": 9.9, "passed": True},
        ])  # fmt: skip
        assert "gate-near-threshold" not in found(entry)


class TestTrials:
    def test_fires_for_scenarios_with_fewer_trials_than_a_comparison_needs(self) -> None:
        """Three trials of one scenario: best p 0.1, above 0.05; four are needed."""
        entries = [scenario(trial=k) for k in (1, 2, 3)]
        f = run_found(entries)["too-few-trials"]
        assert f.scenario == "node-crash" and "node-crash: 3 (best p 0.1)" in f.evidence
        assert "Run 4 trials a side" in f.recommendation

    def test_silent_with_enough_trials(self) -> None:
        """Five trials of the only scenario can reach p = 0.008."""
        assert "too-few-trials" not in run_found([scenario(trial=k) for k in range(1, 6)])

    def test_the_page_shares_alpha_between_scenarios(self) -> None:
        """With five scenarios each gets 0.01: four trials (best p 0.029) are too few, five are not."""
        entries = [scenario(name=f"s{i}", trial=k) for i in range(5) for k in range(1, 5)]
        f = run_found(entries)["too-few-trials"]
        assert "Run 5 trials a side" in f.recommendation and f.scenario is None


class TestZones:
    def test_fires_when_every_node_is_in_one_zone(self) -> None:
        """Three nodes, all in zone-a."""
        target = {**TESTBED, "nodes": [{"name": f"n{i}", "zone": "zone-a"} for i in range(3)]}
        f = run_found([scenario()], target=target)["replicas-in-one-zone"]
        assert "All 3 nodes" in f.evidence and "zone-a" in f.evidence

    def test_reads_a_clusters_nodes_per_zone(self) -> None:
        """A cluster's `zones` fact with one zone."""
        assert "replicas-in-one-zone" in run_found(
            [scenario()], target={"kind": "kubernetes", "zones": {"use1-az1": 4}}
        )

    def test_silent_across_zones_or_when_unknown(self) -> None:
        """Two zones, unlabelled nodes or no node facts: no finding."""
        assert "replicas-in-one-zone" not in run_found([scenario()])
        assert "replicas-in-one-zone" not in run_found(
            [scenario()], target={"kind": "kubernetes", "zones": {"unlabelled": 3}}
        )
        assert "replicas-in-one-zone" not in run_found(
            [scenario()], target={"kind": "kubernetes", "zones": None}
        )

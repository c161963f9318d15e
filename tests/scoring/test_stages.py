"""Recovery phases and the fault-effect check (harness.scoring.stages): synthetic evidence per
phase, present and missing, and the recorded game day checked against its ground truth."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.result import files
from harness.scoring import stages, windows
from harness.store import rundir

PHASES = windows.Phases(baseline_start_t=0.0, fault_start_t=100.0, fault_end_t=140.0, end_t=160.0)
HIT = stages.UserView(time_to_impact_s=0.5, recovery_time_s=7.5, stability_s=10.0)
CLEAN = stages.UserView(time_to_impact_s=None, recovery_time_s=0.0, stability_s=10.0)
LOST = stages.UserView(time_to_impact_s=0.5, recovery_time_s=None, stability_s=10.0)
GAMEDAY = Path(__file__).parents[1] / "fixtures/runs/20261202T174601Z-local-gameday-8afa"


def ev(t: float, event: str, **fields: Any) -> dict[str, Any]:
    return {"t": t, "event": event, "source": "test", **fields}


def phase(found: list[stages.RecoveryPhase], name: str) -> stages.RecoveryPhase:
    return next(p for p in found if p.name == name)


def run(
    users: stages.UserView = HIT, events: Any = None, controlplane: Any = None
) -> list[stages.RecoveryPhase]:
    return stages.recovery_phases(PHASES, users, events, controlplane, "crash-a-node")


class TestOrderAndShape:
    def test_seven_phases_in_contract_order(self) -> None:
        """Every scenario gets the seven phases, always in the same order."""
        assert [p.name.value for p in run()] == [
            "fault_applied", "users_affected", "detected", "rerouted", "users_back", "capacity_restored", "steady",
        ]  # fmt: skip

    def test_fault_applied_is_the_fault_start_from_the_markers(self) -> None:
        """The fault is applied where scoring places it: the method's first action."""
        p = phase(run(), "fault_applied")
        assert (p.t, p.source, p.evidence) == (100.0, stages.Source.MARKERS, "crash-a-node started")

    def test_result_entries_have_a_reason_only_when_null(self) -> None:
        """at_s counts from the fault; a null phase says why, a seen one has no reason key."""
        out = stages.to_dicts(run(events=[ev(103.8, "node_not_ready", node="node-b")]), PHASES.fault_start_t)
        detected = next(d for d in out if d["name"] == "detected")
        assert detected["at_s"] == 3.8 and "reason" not in detected
        rerouted = next(d for d in out if d["name"] == "rerouted")
        assert rerouted["t"] is None and rerouted["at_s"] is None and rerouted["reason"]

    def test_durations_run_to_the_next_phase_in_time(self) -> None:
        """A phase lasts until the next one in time, even when a later-listed one comes first;
        the last one and nulls have no duration."""
        found = [
            stages.RecoveryPhase(stages.Stage.FAULT_APPLIED, 100.0),
            stages.RecoveryPhase(stages.Stage.USERS_AFFECTED, None, reason="x"),
            stages.RecoveryPhase(stages.Stage.USERS_BACK, 107.0),
            stages.RecoveryPhase(stages.Stage.CAPACITY_RESTORED, 130.0),
            stages.RecoveryPhase(stages.Stage.STEADY, 117.0),
        ]
        assert stages.durations(found) == [7.0, None, 10.0, None, 13.0]


class TestUsersPhases:
    def test_affected_back_and_steady_come_from_scoring(self) -> None:
        """Users affected at the impact, back at the recovery point, steady after the stability window."""
        found = run(HIT)
        assert phase(found, "users_affected").t == 100.5
        assert phase(found, "users_back").t == 107.5
        assert phase(found, "steady").t == 117.5
        assert {phase(found, n).source for n in ("users_affected", "users_back", "steady")} == {
            stages.Source.TIMELINE
        }

    def test_no_impact_leaves_users_affected_and_back_null_with_reasons(self) -> None:
        """Without an impact nobody was affected or came back; the stability window still ends."""
        found = run(CLEAN)
        assert (
            phase(found, "users_affected").t is None and "no impact" in phase(found, "users_affected").reason
        )
        assert phase(found, "users_back").t is None and "not affected" in phase(found, "users_back").reason
        assert phase(found, "steady").t == 110.0

    def test_no_recovery_leaves_users_back_and_steady_null(self) -> None:
        """A scenario that did not recover has neither a recovery point nor a steady state."""
        found = run(LOST)
        for name in ("users_back", "steady"):
            assert phase(found, name).t is None and "did not recover" in phase(found, name).reason


class TestDetected:
    def test_from_the_ground_truth(self) -> None:
        """The first node NotReady (or replica not ready, leader lost) after the fault start; earlier events do not count."""
        found = run(
            events=[ev(90.0, "node_not_ready", node="node-a"), ev(103.8, "node_not_ready", node="node-b")]
        )
        p = phase(found, "detected")
        assert (p.t, p.source, p.evidence) == (103.8, stages.Source.GROUND_TRUTH, "node_not_ready node-b")

    def test_etcd_leader_lost(self) -> None:
        """A leader change to no leader is the platform noticing a control-plane fault."""
        found = run(events=[ev(100.2, "etcd_leader_changed", member=None, previous="etcd-a")])
        assert phase(found, "detected").evidence == "etcd leader etcd-a lost"

    def test_ground_truth_without_a_detection(self) -> None:
        """The ground truth is there but shows nothing: null, saying the platform did not notice."""
        p = phase(run(events=[ev(100.1, "fault_applied", fault="network", target="zone-b")]), "detected")
        assert p.t is None and "did not notice" in p.reason

    def test_from_the_control_plane_samples(self) -> None:
        """On a cluster (no ground truth) a node seen NotReady by the watcher."""
        cp = [{"t": 50.0, "kind": "node", "name": "n1", "ready": True},
              {"t": 141.0, "kind": "node", "name": "n1", "ready": False}]  # fmt: skip
        p = phase(run(controlplane=cp), "detected")
        assert (p.t, p.source, p.evidence) == (141.0, stages.Source.CONTROL_PLANE, "node n1 NotReady")

    def test_no_source(self) -> None:
        """Neither ground truth nor samples: null, naming both missing files."""
        p = phase(run(), "detected")
        assert p.t is None and "events.jsonl" in p.reason and "controlplane.jsonl" in p.reason


class TestRerouted:
    def test_from_the_ground_truth(self) -> None:
        """The first endpoint removed after the fault start."""
        p = phase(run(events=[ev(103.9, "endpoint_removed", replica="subs-1")]), "rerouted")
        assert (p.t, p.evidence) == (103.9, "endpoint_removed subs-1")

    def test_ground_truth_without_a_removal(self) -> None:
        """No endpoint left: null with that reason."""
        p = phase(run(events=[]), "rerouted")
        assert p.t is None and "no endpoint" in p.reason

    def test_control_plane_samples_hold_no_endpoints(self) -> None:
        """On a cluster the samples have no endpoints: null, saying so rather than guessing from pods."""
        cp = [{"t": 101.0, "kind": "pod", "name": "p1", "event": "not_ready"}]
        p = phase(run(controlplane=cp), "rerouted")
        assert p.t is None and "EndpointSlices" in p.reason

    def test_from_the_endpoint_samples_after_a_node_loss(self) -> None:
        """node-b lost: the first sample after the fault with fewer ready endpoints is the rerouting."""
        cp = [slices(99.0, 3), slices(100.5, 3), {"t": 102.0, "kind": "node", "name": "node-b", "ready": False},
              slices(102.5, 3), slices(103.5, 2, gone="node-b"), slices(104.5, 2, gone="node-b")]  # fmt: skip
        p = phase(run(controlplane=cp), "rerouted")
        assert (p.t, p.source) == (103.5, stages.Source.CONTROL_PLANE)
        assert p.evidence == "endpointslice subs: 3 → 2 ready (node node-b removed)"

    def test_a_node_whose_endpoints_moved_in_one_sample_is_rerouted_too(self) -> None:
        """Same count, but the failed node's endpoint replaced elsewhere between two samples: still rerouted."""
        moved = {**slices(103.0, 3), "nodes": {"node-a": 2, "node-c": 1}}
        p = phase(run(controlplane=[slices(99.0, 3), moved]), "rerouted")
        assert p.t == 103.0 and "node node-b removed" in p.evidence

    def test_endpoint_samples_without_a_drop(self) -> None:
        """The endpoints were sampled and none left: null, saying the samples show none leaving."""
        p = phase(run(controlplane=[slices(99.0, 3), slices(101.0, 3), slices(102.0, 3)]), "rerouted")
        assert p.t is None and "no ready endpoint" in p.reason

    def test_a_failed_sample_is_not_a_drop(self) -> None:
        """An endpoints sample the API did not answer counts for nothing (no 3 → 0)."""
        failed = {**slices(101.0, 0), "ok": False, "ready": None, "nodes": None, "error": "500 Internal"}
        p = phase(run(controlplane=[slices(99.0, 3), failed, slices(102.0, 3)]), "rerouted")
        assert p.t is None

    def test_no_answered_sample_after_the_fault_is_not_a_quiet_one(self) -> None:
        """Samples before the fault only (the API server stopped answering): not observed, rather than no rerouting."""
        failed = {**slices(101.0, 0), "ok": False, "ready": None, "nodes": None, "error": "500 Internal"}
        p = phase(run(controlplane=[slices(99.0, 3), failed]), "rerouted")
        assert p.t is None and "no endpoints sample after the fault start" in p.reason


def slices(t: float, ready: int, gone: str | None = None) -> dict[str, Any]:
    """An `endpoints` sample line: `ready` endpoints spread over node-a..c, none on `gone`."""
    names = [n for n in ("node-a", "node-b", "node-c") if n != gone]
    nodes: dict[str, int] = {}
    for i in range(ready):
        nodes[names[i % len(names)]] = nodes.get(names[i % len(names)], 0) + 1
    return {"t": t, "kind": "endpoints", "service": "subs", "source": "endpointslices", "ok": True,
            "ready": ready, "not_ready": 0, "nodes": nodes, "error": None}  # fmt: skip


class TestCapacityRestored:
    def test_endpoints_back_to_their_count(self) -> None:
        """Restored when as many endpoints were added as removed since the fault."""
        events = [ev(103.8, "endpoint_removed", replica="r1"), ev(120.0, "endpoint_removed", replica="r2"),
                  ev(130.0, "endpoint_added", replica="r3", node="n2"), ev(135.5, "endpoint_added", replica="r4", node="n3")]  # fmt: skip
        p = phase(run(events=events), "capacity_restored")
        assert p.t == 135.5 and p.evidence.startswith("endpoint_added r4 on n3")

    def test_still_short_at_the_end(self) -> None:
        """An endpoint not replaced by the end of the observation: null, with how many are missing."""
        events = [
            ev(103.8, "endpoint_removed", replica="r1"),
            ev(170.0, "endpoint_added", replica="r9", node="n1"),
        ]
        p = phase(run(events=events), "capacity_restored")
        assert p.t is None and "1 short" in p.reason

    def test_never_reduced(self) -> None:
        """No endpoint ever left: nothing to restore."""
        p = phase(run(events=[]), "capacity_restored")
        assert p.t is None and "never reduced" in p.reason

    def test_from_the_deployments_on_a_cluster(self) -> None:
        """The deployment back to its desired available replicas."""
        cp = [{"t": 101.0, "kind": "deployment", "name": "subs", "available": 2, "desired": 3},
              {"t": 125.0, "kind": "deployment", "name": "subs", "available": 3, "desired": 3}]  # fmt: skip
        p = phase(run(controlplane=cp), "capacity_restored")
        assert (p.t, p.source) == (125.0, stages.Source.CONTROL_PLANE)

    def test_no_source(self) -> None:
        """Neither ground truth nor samples: null, with the reason."""
        assert "events.jsonl" in phase(run(), "capacity_restored").reason

    def test_from_the_endpoints_when_no_deployment_changed(self) -> None:
        """No deployment line in the window: ready endpoints back to their count before the fault."""
        cp = [slices(99.0, 3), slices(103.5, 2, gone="node-b"), slices(130.0, 3)]
        p = phase(run(controlplane=cp), "capacity_restored")
        assert (p.t, p.source) == (130.0, stages.Source.CONTROL_PLANE)
        assert p.evidence == "endpointslice subs: 3 ready, as before the fault"

    def test_endpoints_still_short_at_the_end(self) -> None:
        """Endpoints that never came back: null, with the count they were short of."""
        cp = [slices(99.0, 3), slices(103.5, 2, gone="node-b"), slices(150.0, 2, gone="node-b")]
        p = phase(run(controlplane=cp), "capacity_restored")
        assert p.t is None and "below their 3" in p.reason

    def test_the_deployments_come_first(self) -> None:
        """Where the deployments show the capacity back, that is the phase (derived from pods)."""
        cp = [slices(99.0, 3), slices(103.5, 2), slices(128.0, 3),
              {"t": 101.0, "kind": "deployment", "name": "subs", "available": 2, "desired": 3},
              {"t": 125.0, "kind": "deployment", "name": "subs", "available": 3, "desired": 3}]  # fmt: skip
        assert phase(run(controlplane=cp), "capacity_restored").t == 125.0


def markers(*actions: tuple[str, float, bool]) -> list[dict[str, Any]]:
    out = [{"t": 0.0, "kind": "phase", "phase": "baseline"}]
    for name, t, undo in actions:
        start = {"t": t, "kind": "activity_start", "name": name, "type": "action", "section": "method"}
        out += [
            {**start, "undo": True} if undo else start,
            {**start, "kind": "activity_end", "t": t + 1.0, "status": "succeeded"},
        ]
    return out


class TestFaultEffect:
    def test_a_ground_truth_event_confirms_the_fault(self) -> None:
        """The fault's own record and what followed from it are the evidence."""
        events = [
            ev(100.01, "fault_applied", fault="node_crash", target="node-b"),
            ev(103.8, "node_not_ready", node="node-b"),
        ]
        effect = stages.fault_effect(PHASES, markers(("crash", 100.0, False)), CLEAN, events, None)
        assert effect.outcome is stages.Outcome.EFFECT_OBSERVED and effect.without_effect == 0
        assert (
            effect.activities[0].evidence == "fault_applied node_crash node-b; node_not_ready node-b +3.8 s"
        )

    def test_a_source_that_shows_nothing_is_no_effect_observed(self) -> None:
        """Ground truth with nothing from the fault and no user impact: the fault may never have happened."""
        effect = stages.fault_effect(PHASES, markers(("latency", 100.0, False)), CLEAN, [], None)
        assert effect.outcome is stages.Outcome.NO_EFFECT_OBSERVED and effect.without_effect == 1
        assert effect.activities[0].observed is False

    def test_user_impact_confirms_a_fault_without_other_evidence(self) -> None:
        """On a target without ground truth, users affected after the fault show it happened."""
        effect = stages.fault_effect(PHASES, markers(("latency", 100.0, False)), HIT, None, [])
        assert effect.outcome is stages.Outcome.EFFECT_OBSERVED
        assert effect.activities[0].source is stages.Source.TIMELINE

    def test_no_source_and_no_impact_is_unknown(self) -> None:
        """Nothing could tell: unknown, and the metric is null rather than a clean zero."""
        effect = stages.fault_effect(PHASES, markers(("latency", 100.0, False)), CLEAN, None, None)
        assert effect.outcome is stages.Outcome.UNKNOWN and effect.without_effect is None
        assert effect.activities[0].observed is None

    def test_a_control_plane_change_confirms_the_fault(self) -> None:
        """A pod deleted in the activity's span is evidence on a cluster."""
        cp = [{"t": 100.6, "kind": "pod", "name": "subs-1", "event": "deleted"}]
        effect = stages.fault_effect(PHASES, markers(("kill", 100.0, False)), CLEAN, None, cp)
        assert effect.activities[0].source is stages.Source.CONTROL_PLANE
        assert effect.activities[0].evidence == "pod subs-1 deleted +0.6 s"

    def test_an_instance_stopped_is_aws_evidence(self) -> None:
        """EC2 says the targeted instance is shutting down: the fault took effect, before the node is NotReady."""
        cp = [{"t": 99.0, "kind": "instance", "id": "i-0b", "node": "node-b", "state": "running", "error": None},
              {"t": 100.8, "kind": "instance", "id": "i-0b", "node": "node-b", "state": "shutting-down", "error": None},
              {"t": 140.0, "kind": "node", "name": "node-b", "ready": False}]  # fmt: skip
        effect = stages.fault_effect(PHASES, markers(("terminate", 100.0, False)), CLEAN, None, cp)
        assert effect.outcome is stages.Outcome.EFFECT_OBSERVED
        assert (effect.activities[0].source, effect.activities[0].evidence) == (
            stages.Source.AWS,
            "EC2 instance i-0b (node node-b) shutting-down +0.8 s",
        )
        applied = phase(run(controlplane=cp), "fault_applied")
        assert (applied.t, applied.source) == (100.0, stages.Source.AWS)
        assert (
            applied.evidence == "crash-a-node started; EC2 instance i-0b (node node-b) shutting-down +0.8 s"
        )

    def test_an_instance_running_is_no_evidence(self) -> None:
        """A replacement instance starting is not the fault: without other evidence the fault is unconfirmed."""
        cp = [{"t": 101.0, "kind": "instance", "id": "i-0n", "node": "node-d", "state": "running"}]
        effect = stages.fault_effect(PHASES, markers(("terminate", 100.0, False)), CLEAN, None, cp)
        assert effect.outcome is stages.Outcome.NO_EFFECT_OBSERVED
        assert phase(run(controlplane=cp), "fault_applied").source is stages.Source.MARKERS

    def test_each_activity_needs_evidence_in_its_own_span(self) -> None:
        """Two faults: the second's events do not confirm the first; undo actions are not faults."""
        events = [ev(102.5, "fault_applied", fault="node_crash", target="node-b")]
        acts = markers(("kill-leader", 100.0, False), ("crash", 102.0, False), ("restore", 120.0, True))
        effect = stages.fault_effect(PHASES, acts, CLEAN, events, None)
        assert [(a.name, a.observed) for a in effect.activities] == [("kill-leader", False), ("crash", True)]
        assert effect.outcome is stages.Outcome.NO_EFFECT_OBSERVED and effect.without_effect == 1


# --- the recorded game day --------------------------------------------------------------------


def _gameday() -> list[tuple[str, Path, Any]]:
    result = files.read(GAMEDAY / "result.json")
    return [(s.name, rundir.scenario_dir(GAMEDAY, s.name, s.trial), s) for s in result.scenarios]


@pytest.mark.parametrize(
    ("name", "sdir", "scenario"), _gameday(), ids=lambda v: v if isinstance(v, str) else ""
)
class TestRecordedGameDay:
    def test_users_back_is_the_recovery_time(self, name: str, sdir: Path, scenario: Any) -> None:
        """users_back.at_s is recovery_time_s within one bucket (null only where there was no impact)."""
        back = next(p for p in scenario.recovery_phases if p.name == "users_back")
        metrics = scenario.metrics
        if metrics.time_to_impact_s is None:
            assert back.at_s is None and back.reason
        else:
            assert back.at_s == pytest.approx(metrics.recovery_time_s, abs=1.0)

    def test_phases_match_their_ground_truth_events(self, name: str, sdir: Path, scenario: Any) -> None:
        """Each phase taken from the ground truth starts within 0.5 s of its event, and the fault
        is applied within 0.5 s of the ground truth's fault_applied."""
        events = rundir.read_records(sdir / "events.jsonl") or []
        start = scenario.phases.fault_start_t
        applied = next(e for e in events if e["event"] == "fault_applied" and e["t"] >= start - 1.0)
        first = scenario.recovery_phases[0]
        assert first.name == "fault_applied" and abs(first.t - applied["t"]) <= 0.5
        for p in scenario.recovery_phases:
            if p.source != "ground-truth":
                continue
            event = (
                p.evidence.split()[0] if not p.evidence.startswith("etcd leader") else "etcd_leader_changed"
            )
            assert any(e["event"] == event and abs(e["t"] - p.t) <= 0.5 for e in events), (p.name, p.evidence)

    def test_harness_score_reproduces_the_phases(self, name: str, sdir: Path, scenario: Any) -> None:
        """The stored phases and fault effect are what the folder and the scores give again."""
        marks = rundir.read_records(sdir / "markers.jsonl")
        phases = windows.phases_from_markers(marks)
        users = stages.UserView(scenario.metrics.time_to_impact_s, scenario.metrics.recovery_time_s, 10.0)
        events = rundir.read_records(sdir / "events.jsonl")
        first = stages.fault_activities(marks)[0][0]
        again = stages.to_dicts(
            stages.recovery_phases(phases, users, events, None, first), phases.fault_start_t
        )
        stored = json.loads((GAMEDAY / "result.json").read_text())
        entry = next(s for s in stored["scenarios"] if s["name"] == name)
        assert entry["recovery_phases"] == again
        effect = stages.fault_effect(phases, marks, users, events, None)
        assert entry["fault_effect"] == effect.to_dict()
        assert effect.outcome is stages.Outcome.EFFECT_OBSERVED
        assert scenario.metrics.faults_without_effect == 0


def test_the_node_crash_recovery_is_explained() -> None:
    """The bundled game day's node crash: NotReady and out of the load balancer 3.8 s after the
    crash; users back at the recovery time, the rest being requests already sent to the dead node
    waiting out their timeout; the replacement in the load balancer only after the eviction."""
    scenario = next(s for name, _, s in _gameday() if name == "node-crash")
    at = {p.name: p.at_s for p in scenario.recovery_phases}
    assert at["detected"] == pytest.approx(3.8, abs=0.1)
    assert at["rerouted"] == pytest.approx(3.8, abs=0.1)
    assert at["users_back"] == scenario.metrics.recovery_time_s
    assert 3.0 < at["users_back"] - at["rerouted"] < 5.0  # within the 5 s request timeout
    assert at["capacity_restored"] > 30.0  # the eviction timeout
    assert at["steady"] == pytest.approx(at["users_back"] + 10.0)

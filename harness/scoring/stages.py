"""Recovery phases and the fault-effect check: why a recovery took as long as it did.

Pure: a scenario's Phases, what scoring found (time to impact, recovery time, stability window),
its phase markers, and the target's evidence (the testbed's ground truth, `events.jsonl`; the
control-plane samples, `controlplane.jsonl`) in; plain values out. Called by the engine's
`score_scenario_dir`, so `harness score` reproduces them; the report draws them.

**Recovery phases**, in this order (each with its instant, the evidence and where it came from):

| phase | instant | source |
| --- | --- | --- |
| `fault_applied` | the fault start (the method's first action) | markers; aws when an instance line after it shows a machine stopping, stopped or terminated |
| `users_affected` | fault start + `time_to_impact_s` | timeline |
| `detected` | the platform noticed: a node NotReady, a replica not ready or dead, the etcd leader or quorum lost | ground truth, else control plane (node NotReady, pod not ready or deleted, leader lost) |
| `rerouted` | an endpoint left the load balancer | ground truth, else control plane (the first `endpoints` sample with fewer ready endpoints than the one before, or none left on a node that had some) |
| `users_back` | the recovery point: fault start + `recovery_time_s` | timeline |
| `capacity_restored` | the endpoints (on a cluster: available replicas) back to their count before the fault | ground truth, else control plane (deployments; where they show no return, ready endpoints back to the last sample's count before the fault) |
| `steady` | the end of the stability window after the recovery point | timeline |

Only evidence from the fault start to the end of the observation counts (what the harness did
after it, its clean-up, is not the system's recovery). A phase without evidence is null with the
reason: the source is missing, or it shows no such event. `at_s` counts from the fault start;
`duration_s` runs to the next phase in time (phases are listed in the order above, but a
replacement can become ready after users are back).

**Fault effect.** Each fault activity (a method action that is not the undo) is confirmed by the
first evidence within its span (its start to the next fault activity's start, the last one to the
end of the observation): a ground-truth event (`fault_applied`, a node NotReady, a replica dead,
the leader lost...), an EC2 instance stopping, stopped or terminated (`instance` lines, source
aws), a control-plane change (a node NotReady, a pod not ready or deleted, a
deployment short, failed health or API samples, a leader change), or user impact that started
in its span. `observed` is False when a source was there and showed nothing, None when no source
could tell (no ground truth, no samples, no impact).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.scoring.windows import Phases


class Stage(StrEnum):
    """A recovery phase, in the order a recovery goes through them."""

    FAULT_APPLIED = "fault_applied"
    USERS_AFFECTED = "users_affected"
    DETECTED = "detected"
    REROUTED = "rerouted"
    USERS_BACK = "users_back"
    CAPACITY_RESTORED = "capacity_restored"
    STEADY = "steady"


class Source(StrEnum):
    """Where a phase or a fault's evidence came from."""

    MARKERS = "markers"
    GROUND_TRUTH = "ground-truth"
    CONTROL_PLANE = "control-plane"
    TIMELINE = "timeline"
    AWS = "aws"


class Outcome(StrEnum):
    """Whether the scenario's faults demonstrably happened."""

    EFFECT_OBSERVED = "effect-observed"
    """Every fault activity has evidence."""
    NO_EFFECT_OBSERVED = "no-effect-observed"
    """A source was there for some fault activity and showed nothing: the fault may never have
    happened, so a clean result says nothing about resilience."""
    UNKNOWN = "unknown"
    """No activity without evidence, but some no source could judge (or the method had no action)."""


@dataclass(frozen=True)
class UserView:
    """What scoring found, from the timeline: the phases users felt."""

    time_to_impact_s: float | None
    recovery_time_s: float | None
    stability_s: float


@dataclass(frozen=True)
class RecoveryPhase:
    name: Stage
    t: float | None
    source: Source | None = None
    evidence: str | None = None
    reason: str | None = None
    """Why t is null; None when it is not."""


@dataclass(frozen=True)
class FaultActivity:
    name: str
    observed: bool | None
    source: Source | None
    evidence: str | None


@dataclass(frozen=True)
class FaultEffect:
    outcome: Outcome
    activities: tuple[FaultActivity, ...]

    @property
    def without_effect(self) -> int | None:
        """Fault activities a source could have confirmed and did not; None when the outcome is unknown."""
        if self.outcome is Outcome.UNKNOWN:
            return None
        return sum(1 for a in self.activities if a.observed is False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "activities": [
                {
                    "name": a.name,
                    "observed": a.observed,
                    "source": None if a.source is None else a.source.value,
                    "evidence": a.evidence,
                }
                for a in self.activities
            ],
        }


# --- recovery phases ------------------------------------------------------------------------

_DETECTED = frozenset(
    {"node_not_ready", "replica_not_ready", "replica_marked_not_ready", "replica_died", "quorum_lost"}
)
"""Ground-truth events by which the platform noticed a fault (and etcd_leader_changed to no leader)."""
_NO_SOURCE = "no ground truth (events.jsonl) and no control-plane samples (controlplane.jsonl)"


def recovery_phases(
    phases: Phases,
    users: UserView,
    events: Sequence[Mapping[str, Any]] | None,
    controlplane: Sequence[Mapping[str, Any]] | None,
    first_action: str | None = None,
) -> list[RecoveryPhase]:
    """The seven recovery phases of one scenario trial, in Stage order.

    events: the ground truth's lines (None: no events.jsonl); controlplane: the samples' lines
    (None: no controlplane.jsonl); first_action: the name of the method action that starts the fault.
    """
    start, end = phases.fault_start_t, phases.end_t
    gt = _rows(events, "event", start, end)
    cp = _rows(controlplane, "kind", start, end)
    return [
        _fault_applied(start, first_action, cp),
        _users_affected(phases, users),
        _detected(gt, cp),
        _rerouted(gt, controlplane, start, end),
        _users_back(phases, users),
        _capacity_restored(gt, cp, start, controlplane, end),
        _steady(phases, users),
    ]  # fmt: skip


def durations(stages: Sequence[RecoveryPhase]) -> list[float | None]:
    """Per phase, seconds to the next phase in time (ties in list order); None for the last and for nulls."""
    timed = sorted((p.t, i) for i, p in enumerate(stages) if p.t is not None)
    out: list[float | None] = [None] * len(stages)
    for (t, i), (t_next, _) in itertools.pairwise(timed):
        out[i] = t_next - t
    return out


def to_dicts(stages: Sequence[RecoveryPhase], fault_start_t: float) -> list[dict[str, Any]]:
    """result.json's `recovery_phases`: t and at_s rounded to the millisecond, reason only for nulls."""
    out = []
    for p, duration in zip(stages, durations(stages), strict=True):
        entry: dict[str, Any] = {
            "name": p.name.value,
            "t": _round(p.t),
            "at_s": None if p.t is None else _round(p.t - fault_start_t),
            "duration_s": _round(duration),
            "source": None if p.source is None else p.source.value,
            "evidence": p.evidence,
        }
        if p.t is None:
            entry["reason"] = p.reason
        out.append(entry)
    return out


def _fault_applied(
    start: float, first_action: str | None, cp: list[Mapping[str, Any]] | None
) -> RecoveryPhase:
    """The fault start; with the instance it stopped or terminated when EC2 says so (source aws)."""
    started = f"{first_action or 'the first method action'} started"
    hit = next((r for r in cp or [] if _instance_down(r)), None)
    if hit is None:
        return RecoveryPhase(Stage.FAULT_APPLIED, start, Source.MARKERS, started)
    return RecoveryPhase(Stage.FAULT_APPLIED, start, Source.AWS,
                         f"{started}; {_instance_words(hit)} +{float(hit['t']) - start:.1f} s")  # fmt: skip


def _users_affected(phases: Phases, users: UserView) -> RecoveryPhase:
    if users.time_to_impact_s is None:
        return _null(
            Stage.USERS_AFFECTED, "no impact: the timeline never had a run of unhealthy buckets long enough"
        )
    return RecoveryPhase(Stage.USERS_AFFECTED, phases.fault_start_t + users.time_to_impact_s, Source.TIMELINE,
                         "first run of unhealthy buckets (time_to_impact_s)")  # fmt: skip


def _users_back(phases: Phases, users: UserView) -> RecoveryPhase:
    if users.recovery_time_s is None:
        return _null(Stage.USERS_BACK, "did not recover within the observation (recovery_time_s null)")
    if users.time_to_impact_s is None:
        return _null(Stage.USERS_BACK, "users were not affected (no impact), so never had to come back")
    return RecoveryPhase(Stage.USERS_BACK, phases.fault_start_t + users.recovery_time_s, Source.TIMELINE,
                         "recovery point: healthy from here on (recovery_time_s)")  # fmt: skip


def _steady(phases: Phases, users: UserView) -> RecoveryPhase:
    if users.recovery_time_s is None:
        return _null(Stage.STEADY, "did not recover within the observation: no stability window")
    return RecoveryPhase(Stage.STEADY, phases.fault_start_t + users.recovery_time_s + users.stability_s,
                         Source.TIMELINE, f"healthy for the {users.stability_s:g} s stability window")  # fmt: skip


def _detected(gt: list[Mapping[str, Any]] | None, cp: list[Mapping[str, Any]] | None) -> RecoveryPhase:
    if gt is not None:
        hit = next((e for e in gt if e["event"] in _DETECTED or _leader_lost(e, "event")), None)
        if hit is not None:
            return RecoveryPhase(Stage.DETECTED, float(hit["t"]), Source.GROUND_TRUTH, describe(hit))
        return _null(Stage.DETECTED, "the ground truth shows no node NotReady, replica not ready or dead, or "
                     "etcd leader lost after the fault start: the platform did not notice")  # fmt: skip
    if cp is not None:
        for r in cp:
            if r["kind"] == "node" and r.get("ready") is False:
                return RecoveryPhase(
                    Stage.DETECTED, float(r["t"]), Source.CONTROL_PLANE, f"node {r.get('name')} NotReady"
                )
            if r["kind"] == "pod" and r.get("event") in ("not_ready", "deleted"):
                return RecoveryPhase(Stage.DETECTED, float(r["t"]), Source.CONTROL_PLANE,
                                     f"pod {r.get('name')} {r.get('event')}")  # fmt: skip
            if _leader_lost(r, "kind"):
                return RecoveryPhase(Stage.DETECTED, float(r["t"]), Source.CONTROL_PLANE,
                                     f"etcd leader {r.get('previous')} lost")  # fmt: skip
        return _null(Stage.DETECTED, "the control-plane samples show no node NotReady, pod not ready or deleted, "
                     "or leader lost after the fault start")  # fmt: skip
    return _null(Stage.DETECTED, _NO_SOURCE)


def _rerouted(
    gt: list[Mapping[str, Any]] | None,
    controlplane: Sequence[Mapping[str, Any]] | None,
    start: float,
    end: float,
) -> RecoveryPhase:
    if gt is not None:
        hit = next((e for e in gt if e["event"] == "endpoint_removed"), None)
        if hit is not None:
            return RecoveryPhase(Stage.REROUTED, float(hit["t"]), Source.GROUND_TRUTH, describe(hit))
        return _null(
            Stage.REROUTED,
            "the ground truth shows no endpoint leaving the load balancer after the fault start",
        )
    if controlplane is None:
        return _null(Stage.REROUTED, _NO_SOURCE)
    samples = endpoint_samples(controlplane, end)
    if not samples:
        return _null(Stage.REROUTED, "the control-plane samples hold no endpoints (EndpointSlices): "
                     "rerouting is not observed")  # fmt: skip
    after = [r for r in samples if r["t"] >= start]
    if not after:
        return _null(
            Stage.REROUTED,
            "no endpoints sample after the fault start was answered: rerouting is not observed",
        )
    previous = next((r for r in reversed(samples) if r["t"] < start), None)
    for r in after:
        if previous is not None and (why := _endpoints_dropped(previous, r)) is not None:
            return RecoveryPhase(Stage.REROUTED, float(r["t"]), Source.CONTROL_PLANE, why)
        previous = r
    return _null(Stage.REROUTED, "the control-plane samples show no ready endpoint of the service leaving "
                 "after the fault start")  # fmt: skip


def endpoint_samples(lines: Sequence[Mapping[str, Any]], end: float) -> list[Mapping[str, Any]]:
    """The successful `endpoints` samples up to `end` (before the fault too: the count to return to), by time."""
    rows = [
        r
        for r in lines
        if r.get("kind") == "endpoints" and r.get("ok") and isinstance(r.get("ready"), int)
        and isinstance(r.get("t"), int | float) and not isinstance(r.get("t"), bool) and r["t"] <= end
    ]  # fmt: skip
    return sorted(rows, key=lambda r: r["t"])


def _endpoints_dropped(before: Mapping[str, Any], now: Mapping[str, Any]) -> str | None:
    """Words for a drop of ready endpoints between two samples (fewer, or a node's removed); None if none."""
    service, was, ready = now.get("service"), int(before["ready"]), int(now["ready"])
    source = "endpointslice" if now.get("source") == "endpointslices" else "endpoints"
    old, new = before.get("nodes") or {}, now.get("nodes") or {}
    gone = sorted(n for n, k in old.items() if n and int(k) > 0 and int(new.get(n) or 0) == 0)
    on = f" (node {', '.join(gone)} removed)" if gone else ""
    if ready < was or gone:
        return f"{source} {service}: {was} → {ready} ready{on}"
    return None


def _capacity_restored(
    gt: list[Mapping[str, Any]] | None,
    cp: list[Mapping[str, Any]] | None,
    start: float,
    controlplane: Sequence[Mapping[str, Any]] | None = None,
    end: float = float("inf"),
) -> RecoveryPhase:
    if gt is not None:
        # Endpoints counted from the fault start: back when as many were added as removed (the
        # steady state before the fault checks that every replica is an endpoint).
        net, short = 0, False
        for e in gt:
            if e["event"] == "endpoint_removed":
                net, short = net - 1, True
            elif e["event"] == "endpoint_added":
                net += 1
                if short and net >= 0:
                    return RecoveryPhase(Stage.CAPACITY_RESTORED, float(e["t"]), Source.GROUND_TRUTH,
                                         f"{describe(e)}: endpoints back to their count before the fault")  # fmt: skip
        if not short:
            return _null(
                Stage.CAPACITY_RESTORED, "no endpoint left the load balancer: capacity was never reduced"
            )
        return _null(Stage.CAPACITY_RESTORED, f"endpoints still {-net} short of their count before the fault "
                     "at the end of the observation")  # fmt: skip
    if cp is not None:
        from_pods = _capacity_from_deployments(cp)
        if from_pods.t is not None or controlplane is None:
            return from_pods
        from_endpoints = _capacity_from_endpoints(controlplane, start, end)
        return from_endpoints if from_endpoints is not None else from_pods
    return _null(Stage.CAPACITY_RESTORED, _NO_SOURCE)


def _capacity_from_deployments(cp: list[Mapping[str, Any]]) -> RecoveryPhase:
    deployments = [r for r in cp if r["kind"] == "deployment"]
    if not deployments:
        return _null(
            Stage.CAPACITY_RESTORED, "the control-plane samples hold no deployment after the fault start"
        )
    state: dict[Any, bool] = {}
    was_short = False
    for r in deployments:
        state[r.get("name")] = int(r.get("available") or 0) < int(r.get("desired") or 0)
        if any(state.values()):
            was_short = True
        elif was_short:
            return RecoveryPhase(Stage.CAPACITY_RESTORED, float(r["t"]), Source.CONTROL_PLANE,
                                 f"deployment {r.get('name')} {r.get('available')} of {r.get('desired')} available")  # fmt: skip
    if not was_short:
        return _null(
            Stage.CAPACITY_RESTORED,
            "no deployment fell below its desired replicas: capacity was never reduced",
        )
    return _null(
        Stage.CAPACITY_RESTORED,
        "a deployment was still below its desired replicas at the end of the observation",
    )


def _capacity_from_endpoints(
    controlplane: Sequence[Mapping[str, Any]], start: float, end: float
) -> RecoveryPhase | None:
    """Ready endpoints back to their count before the fault; None when no sample shows them fall below it."""
    samples = endpoint_samples(controlplane, end)
    before = next((r for r in reversed(samples) if r["t"] < start), None)
    if before is None:
        return None
    desired, short = int(before["ready"]), False
    for r in (r for r in samples if r["t"] >= start):
        if int(r["ready"]) < desired:
            short = True
        elif short:
            source = "endpointslice" if r.get("source") == "endpointslices" else "endpoints"
            return RecoveryPhase(Stage.CAPACITY_RESTORED, float(r["t"]), Source.CONTROL_PLANE,
                                 f"{source} {r.get('service')}: {r['ready']} ready, as before the fault")  # fmt: skip
    if not short:
        return None
    return _null(Stage.CAPACITY_RESTORED, f"ready endpoints still below their {desired} before the fault "
                 "at the end of the observation")  # fmt: skip


# --- fault effect ---------------------------------------------------------------------------

_EFFECTS = frozenset({
    "fault_applied", "replica_died", "replica_not_ready", "replica_marked_not_ready", "node_not_ready",
    "endpoint_removed", "etcd_leader_changed", "quorum_lost", "control_plane_data_lost", "replica_evicted",
})  # fmt: skip
"""Ground-truth events that show a fault happened: the fault's own record, or what followed from it."""


def fault_activities(markers: Iterable[Mapping[str, Any]]) -> list[tuple[str, float, str | None]]:
    """(name, start t, end status) of every fault activity: the method's actions that are not its undo."""
    rows = sorted((m for m in markers if isinstance(m.get("t"), int | float)), key=lambda m: m["t"])
    out: list[tuple[str, float, str | None]] = []
    for i, m in enumerate(rows):
        if m.get("kind") != "activity_start" or m.get("section") != "method":
            continue
        if m.get("type") != "action" or m.get("undo"):
            continue
        name = str(m.get("name"))
        end = next((e for e in rows[i + 1 :] if e.get("kind") == "activity_end" and e.get("section") == "method"
                    and str(e.get("name")) == name), None)  # fmt: skip
        out.append((name, float(m["t"]), None if end is None else end.get("status")))
    return out


def fault_effect(
    phases: Phases,
    markers: Iterable[Mapping[str, Any]],
    users: UserView,
    events: Sequence[Mapping[str, Any]] | None,
    controlplane: Sequence[Mapping[str, Any]] | None,
) -> FaultEffect:
    """Whether each fault activity of the method demonstrably happened, and the scenario's outcome."""
    activities = fault_activities(markers)
    impact_t = None if users.time_to_impact_s is None else phases.fault_start_t + users.time_to_impact_s
    out = []
    for i, (name, start, status) in enumerate(activities):
        end = activities[i + 1][1] if i + 1 < len(activities) else max(phases.end_t, start)
        last = i + 1 == len(activities)
        gt = _rows(events, "event", start, end, closed=last)
        cp = _rows(controlplane, "kind", start, end, closed=last)
        impact_here = impact_t is not None and start <= impact_t and (last or impact_t < end)
        out.append(_activity(name, start, status, gt, cp, impact_here, users))
    observed = [a.observed for a in out]
    if any(o is False for o in observed):
        outcome = Outcome.NO_EFFECT_OBSERVED
    elif observed and all(o is True for o in observed):
        outcome = Outcome.EFFECT_OBSERVED
    else:
        outcome = Outcome.UNKNOWN
    return FaultEffect(outcome, tuple(out))


def _activity(
    name: str,
    start: float,
    status: str | None,
    gt: list[Mapping[str, Any]] | None,
    cp: list[Mapping[str, Any]] | None,
    impact_here: bool,
    users: UserView,
) -> FaultActivity:
    if gt is not None:
        effects = [e for e in gt if e["event"] in _EFFECTS]
        if effects:
            applied = next((e for e in effects if e["event"] == "fault_applied"), None)
            follow = next((e for e in effects if e["event"] != "fault_applied"), None)
            parts = [describe(e) for e in (applied, follow) if e is not None]
            if follow is not None:
                parts[-1] += f" +{follow['t'] - start:.1f} s"
            return FaultActivity(name, True, Source.GROUND_TRUTH, "; ".join(parts))
    down = next((r for r in cp or [] if _instance_down(r)), None)
    if down is not None:
        return FaultActivity(
            name, True, Source.AWS, f"{_instance_words(down)} +{float(down['t']) - start:.1f} s"
        )
    if cp is not None:
        change = next((c for c in (_cp_change(r) for r in cp) if c is not None), None)
        if change is not None:
            t, text = change
            return FaultActivity(name, True, Source.CONTROL_PLANE, f"{text} +{t - start:.1f} s")
    if impact_here:
        return FaultActivity(
            name, True, Source.TIMELINE, f"users affected +{users.time_to_impact_s:g} s after the fault start"
        )
    failed = "the action failed; " if status == "failed" else ""
    if gt is not None:
        return FaultActivity(
            name,
            False,
            Source.GROUND_TRUTH,
            f"{failed}no fault or effect event in the ground truth, no user impact",
        )
    if cp is not None:
        return FaultActivity(
            name,
            False,
            Source.CONTROL_PLANE,
            f"{failed}no change in the control-plane samples, no user impact",
        )
    return FaultActivity(
        name, None, None, f"{failed}no ground truth, no control-plane samples, no user impact"
    )


def _cp_change(r: Mapping[str, Any]) -> tuple[float, str] | None:
    """A control-plane line that shows something broke, with its words; None for a quiet line."""
    kind, t = r["kind"], float(r["t"])
    if kind == "node" and r.get("ready") is False:
        return t, f"node {r.get('name')} NotReady"
    if kind == "pod" and r.get("event") in ("not_ready", "deleted"):
        return t, f"pod {r.get('name')} {r.get('event')}"
    if kind == "deployment" and int(r.get("available") or 0) < int(r.get("desired") or 0):
        return t, f"deployment {r.get('name')} {r.get('available')} of {r.get('desired')} available"
    if kind == "leader":
        return t, f"etcd leader changed to {r.get('member')} (was {r.get('previous')})"
    if kind == "health" and r.get("ok") is False:
        return t, f"{r.get('endpoint')} failing"
    if kind == "api" and r.get("ok") is False and not (r.get("own_load") and r.get("status") == 429):
        return t, f"control-plane {r.get('verb')} failed"
    if kind == "restore" and r.get("event") == "control_plane_data_lost":
        return t, "control-plane data lost"
    return None


# --- helpers --------------------------------------------------------------------------------

INSTANCE_DOWN = frozenset({"stopping", "stopped", "shutting-down", "terminated"})
"""EC2 instance states of a machine going or gone: a node fault on AWS took effect."""


def _instance_down(row: Mapping[str, Any]) -> bool:
    return row.get("kind") == "instance" and row.get("state") in INSTANCE_DOWN


def _instance_words(row: Mapping[str, Any]) -> str:
    node = f" (node {row['node']})" if row.get("node") else ""
    return f"EC2 instance {row.get('id')}{node} {row.get('state')}"


def describe(event: Mapping[str, Any]) -> str:
    """A ground-truth event in a few words: `node_not_ready node-b1`, `fault_applied node_crash node-b1`."""
    name = str(event.get("event"))
    if name == "etcd_leader_changed":
        member = event.get("member")
        return f"etcd leader {event.get('previous')} lost" if member is None else f"etcd leader {member}"
    if name in ("fault_applied", "fault_removed"):
        return f"{name} {event.get('fault')} {event.get('target')}"
    if event.get("replica") is not None and event.get("node") is not None:
        return f"{name} {event['replica']} on {event['node']}"
    subject = next(
        (event[k] for k in ("replica", "node", "member", "target") if event.get(k) is not None), None
    )
    return name if subject is None else f"{name} {subject}"


def _leader_lost(row: Mapping[str, Any], key: str) -> bool:
    kind = "etcd_leader_changed" if key == "event" else "leader"
    return row.get(key) == kind and row.get("member") is None


def _rows(
    lines: Sequence[Mapping[str, Any]] | None, key: str, start: float, end: float, closed: bool = True
) -> list[Mapping[str, Any]] | None:
    """The lines with a numeric t and a `key` in [start, end] ([start, end) if not closed), by time; None without a file."""
    if lines is None:
        return None
    rows = [
        r
        for r in lines
        if isinstance(r.get("t"), int | float)
        and not isinstance(r.get("t"), bool)
        and isinstance(r.get(key), str)
        and start <= r["t"] and (r["t"] <= end if closed else r["t"] < end)
    ]  # fmt: skip
    return sorted(rows, key=lambda r: r["t"])


def _null(name: Stage, reason: str) -> RecoveryPhase:
    return RecoveryPhase(name, None, reason=reason)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)

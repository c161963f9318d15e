"""Rules over how a scenario recovered: which recovery phase took the time, and what held it up.

They read the recovery phases (`recovery_phases`: fault applied, users affected, detected,
rerouted, users back, capacity restored, steady), the recovery metrics, the plan's load settings
and the target's timings (node grace period, eviction toleration).
"""

from __future__ import annotations

import math

from harness.findings.registry import Draft, Effect, Rule, ScenarioInputs, Scope, Severity, ms, seconds

TIMEOUT_MATCH_SHARE = 0.5
"""Users back at least this share of the request timeout after the rerouting: a request sent just
before the rerouting waits out the timeout, so the tail is the timeout minus when it was sent. Paced
users get stuck early (a third of each one's requests go to the dead backend, so most are stuck
within seconds of the fault), the sends just before the rerouting are sparse, and a bucket with one
late timeout among twenty requests is healthy: on the testbed, with a 5 s timeout, users were back
2.9 to 4.6 s after the rerouting (node crashes and zone partitions, tests/findings/test_loop.py).
Half the timeout keeps those and still tells them from a recovery the timeout played no part in
(back within a bucket or two)."""
TIMEOUT_SLACK_S = 2.0
"""...and at most the timeout plus this: two 1 s buckets of measuring, beyond which something
other than the timeout held users up."""
SUGGESTED_TIMEOUT_MIN_S = 1.0
"""The shortest request timeout recommended: the timeout the testbed's accuracy is judged with
(DESIGN: recovery is measured with 1 s request timeouts), long enough for a slow request."""
SUGGESTED_TIMEOUT_P99_MULTIPLE = 3.0
"""A timeout three times the baseline p99 cuts off only requests that are stuck, not slow ones."""

DETECTION_SHARE = 0.5
"""Detection is said to dominate when it took at least half of what users felt."""
DETECTION_MIN_S = 1.0
"""Below a second detection cannot dominate anything worth changing (one bucket)."""
GRACE_MATCH_S = 1.0
"""Detection matches the node grace period within a second (a bucket) or a quarter of it."""

EVICTION_SHARE = 0.8
"""Capacity restored at least at this share of the toleration: eviction, not a restart, brought it back."""
SUGGESTED_TOLERATION_S = 30.0
"""A toleration for not-ready/unreachable nodes short enough that a dead node's pods move within
a minute, long enough not to evict on a brief network blip (Kubernetes' default is 300 s). A
toleration already at or under it (the testbed's, scaled down) is suggested at a third."""

LONG_FAULT_S = 10.0
"""A fault shorter than this (the default stability window) ends before recovery could be judged,
so a recovery at its end says nothing about who did it."""
ROLLBACK_WINDOW_S = 5.0
"""Users back within this of the fault's undo: the undo, not the system, ended the impact."""
BUCKET_SLACK_S = 1.0
"""Recovery points are bucket starts: one 1 s bucket of slack before the fault's end."""

REPAIR_BLOCKED_MIN_S = 0.0
"""Any time a needed repair was blocked counts: with etcd up it is 0 s (docs/scoring.md)."""


def client_timeouts_dominate(inputs: ScenarioInputs) -> Draft | None:
    """Users came back about one request timeout after traffic was rerouted: requests sent to the
    dead backend before the rerouting ended only when they timed out, so the client's timeout, not
    the cluster, set the recovery time.

    Reads the rerouted and users-back phases and `load.request_timeout_s`; the expected effect is
    the timeout shortened to three baseline p99s (at least 1 s)."""
    rerouted, back = inputs.phase("rerouted"), inputs.phase("users_back")
    timeout = inputs.plan_value("load.request_timeout_s")
    if rerouted is None or back is None or timeout is None or timeout <= 0:
        return None
    tail = back - rerouted
    if not TIMEOUT_MATCH_SHARE * timeout <= tail <= timeout + TIMEOUT_SLACK_S:
        return None
    p99 = inputs.metric("latency_ms.baseline.p99")
    suggested = SUGGESTED_TIMEOUT_MIN_S
    if p99 is not None:
        suggested = max(suggested, math.ceil(2 * SUGGESTED_TIMEOUT_P99_MULTIPLE * p99 / 1000) / 2)
    if suggested >= timeout:
        return None
    saved = min(tail, timeout) - suggested
    basis = f"three times the baseline p99 of {ms(p99)}, at least 1 s" if p99 is not None else "at least 1 s"
    at_rerouted, at_back = inputs.since_fault("rerouted"), inputs.since_fault("users_back")
    when = (
        f" (rerouted {seconds(at_rerouted)}, back {seconds(at_back)} after the fault)"
        if at_rerouted is not None and at_back is not None
        else ""
    )
    return Draft(
        title=f"Client timeouts dominate recovery: users waited out the {timeout:g} s request timeout",
        evidence=(
            f"Users were back {seconds(tail)} after traffic was rerouted{when}; the plan's request timeout "
            f"is {timeout:g} s, so requests in flight to the failed backend ended only when they timed out."
        ),
        recommendation=(
            f"Use a shorter request timeout ({suggested:g} s: {basis}) with one or two retries on a new "
            "connection; purchases are safe to retry with their Idempotency-Key."
        ),
        t_from=rerouted,
        t_to=back,
        expected_effect=Effect(
            "recovery_time_s",
            -saved,
            f"about {seconds(saved)} faster: the wait after rerouting shrinks from the {timeout:g} s "
            f"timeout to {suggested:g} s",
        ),
    )


def detection_dominates(inputs: ScenarioInputs) -> Draft | None:
    """Most of what users felt went by before the failure was even detected: with detection at or
    near the node grace period, the grace period (or the lack of load-balancer health checks) is
    the lever, not the repair.

    Reads the fault-applied and detected phases, `recovery_time_s`, the target's node grace
    period (`node_grace_s` on the testbed, `node_grace_period_s` on a cluster) and `lb_health_checks`."""
    detected = inputs.since_fault("detected")
    recovery = inputs.metric("recovery_time_s")
    if detected is None or recovery is None or recovery <= 0 or detected < DETECTION_MIN_S:
        return None
    if detected < DETECTION_SHARE * recovery:
        return None
    grace = inputs.fact("node_grace_s", "node_grace_period_s")
    matches = grace is not None and abs(detected - grace) <= max(GRACE_MATCH_S, grace / 4)
    evidence = (
        f"The failure was detected {seconds(detected)} after the fault, {100 * detected / recovery:.0f} % "
        f"of the {seconds(recovery)} users felt"
    )
    if matches:
        evidence += f"; that is the node grace period ({grace:g} s)"
    evidence += "."
    advice = (
        "Detect sooner: a shorter node-monitor grace period (kube-controller-manager "
        "--node-monitor-grace-period; the testbed's node grace), or readiness probes and load-balancer "
        "health checks that take a dead backend out within seconds whatever the grace period."
    )
    if inputs.target.get("lb_health_checks") is False:
        advice += " The load balancer runs no health checks here (lb_health_checks: false)."
    effect = None
    if matches and grace is not None:
        saved, regained = grace / 2, _tail_regained(inputs, grace / 2, recovery)
        text = f"about {seconds(saved - regained)} faster with the grace period halved"
        if regained > 0:
            text += (
                f": detected {seconds(saved)} sooner, less {seconds(regained)} more of the request timeout "
                "waited out after the earlier rerouting"
            )
        effect = Effect("recovery_time_s", -(saved - regained), text)
    start = inputs.phase("fault_applied")
    return Draft(
        title="Detection dominates recovery: most of the impact passed before the failure was detected",
        evidence=evidence,
        recommendation=advice,
        t_from=start,
        t_to=inputs.phase("detected"),
        expected_effect=effect,
    )


def _tail_regained(inputs: ScenarioInputs, sooner: float, recovery: float) -> float:
    """How much of `sooner` (seconds of earlier detection) users give back waiting out their request
    timeout after the earlier rerouting.

    Users come back one request timeout after the rerouting, less the stretch just before it in
    which too few requests still went to the dead backend to keep a bucket unhealthy (paced users
    get stuck there one by one). That stretch shrinks with the time to the rerouting: rerouted
    sooner, more users are still sending, and the tail comes closer to the full timeout. On the
    testbed (tests/findings/test_loop.py) halving a 4 s grace period moved detection by 2.0 s and
    recovery by 1.1 s both times: the tail grew from 3.7 to 4.6 s and from 3.4 to 4.2 s of a 5 s
    timeout. 0 when the rerouting or the timeout is unknown, or the tail is not timeout-shaped
    (shorter than TIMEOUT_MATCH_SHARE of the timeout)."""
    rerouted = inputs.since_fault("rerouted")
    timeout = inputs.plan_value("load.request_timeout_s")
    if rerouted is None or rerouted <= 0 or timeout is None or not rerouted < recovery:
        return 0.0
    gap = timeout - (recovery - rerouted)
    if not 0 < gap <= (1 - TIMEOUT_MATCH_SHARE) * timeout:  # the tail as client_timeouts_dominate reads it
        return 0.0
    return gap * min(1.0, sooner / rerouted)


def capacity_until_eviction(inputs: ScenarioInputs) -> Draft | None:
    """Users were back, but the lost replicas came back only when their pods were evicted from the
    dead node, after the not-ready/unreachable toleration: for that long the service ran short of
    capacity, and a second failure would have hit it there.

    Reads the users-back and capacity-restored phases and the target's eviction toleration
    (`eviction_s` on the testbed, `unreachable_toleration_s`/`not_ready_toleration_s` on a cluster)."""
    restored = inputs.since_fault("capacity_restored")
    back = inputs.since_fault("users_back")
    toleration = inputs.fact("eviction_s", "unreachable_toleration_s", "not_ready_toleration_s")
    if restored is None or toleration is None or toleration <= 0:
        return None
    if restored < EVICTION_SHARE * toleration or (back is not None and back >= restored):
        return None
    short = restored - back if back is not None else restored
    # Already at or under the suggestion (the testbed's scaled-down 30 s): a third of it.
    suggested = SUGGESTED_TOLERATION_S if toleration > SUGGESTED_TOLERATION_S else round(toleration / 3, 1)
    effect = Effect(
        "recovery_phases.capacity_restored.at_s",
        -(toleration - suggested),
        f"capacity back about {seconds(toleration - suggested)} sooner with a {suggested:g} s toleration",
    )
    users = f"users were back after {seconds(back)}, " if back is not None else ""
    return Draft(
        title=f"Capacity stayed reduced until eviction ({toleration:g} s toleration)",
        evidence=(
            f"Capacity was restored {seconds(restored)} after the fault; {users}so the service ran on fewer "
            f"replicas for {seconds(short)}. Pods leave a failed node only after the {toleration:g} s "
            "not-ready/unreachable toleration."
        ),
        recommendation=(
            "Shorten tolerationSeconds for node.kubernetes.io/not-ready and node.kubernetes.io/unreachable on "
            f"the service's pods (for example {suggested:g} s), or run one replica more than the "
            "load needs so a lost node's share is absorbed."
        ),
        t_from=inputs.phase("users_back") or inputs.phase("fault_applied"),
        t_to=inputs.phase("capacity_restored"),
        expected_effect=effect,
    )


def repair_blocked(inputs: ScenarioInputs) -> Draft | None:
    """The cluster needed a repair (a dead replica behind the load balancer, a replica to
    reschedule) that the controller could not make because the control plane had no quorum: users
    paid for the control plane's outage, not only for the fault.

    Reads `control_plane.repair_blocked_s`, `control_plane.write_unavailable_s` and the target's
    `etcd_members`."""
    blocked = inputs.metric("control_plane.repair_blocked_s")
    if blocked is None or blocked <= REPAIR_BLOCKED_MIN_S:
        return None
    refused = inputs.metric("control_plane.write_unavailable_s")
    members = inputs.target.get("etcd_members")
    evidence = f"Repairs were blocked for {seconds(blocked)}"
    if refused:
        evidence += f" while control-plane writes were refused for {seconds(refused)}"
    evidence += ": the controller could not remove the failed replica or replace it."
    advice = "Keep the control plane's quorum through a member's loss: three etcd members in three zones"
    if isinstance(members, list) and len(members) == 1:
        advice += f" (this target runs one: {members[0]})"
    advice += ", or a managed control plane."
    recovery = inputs.metric("recovery_time_s")
    saved = min(blocked, recovery) if recovery is not None else blocked
    start = inputs.instant("fault_start_t")
    return Draft(
        title="Repair blocked by the control plane",
        evidence=evidence,
        recommendation=advice,
        t_from=start,
        t_to=start + blocked if start is not None else None,
        expected_effect=Effect(
            "recovery_time_s", -saved, f"up to {seconds(saved)} faster: the blocked repair made at once"
        ),
    )


def rollback_recovered(inputs: ScenarioInputs) -> Draft | None:
    """Users were hurt for as long as the fault lasted and came back only when it was undone: the
    rollback, not the system, ended the impact. In production nobody rolls the fault back.

    Reads `time_to_impact_s`, `recovery_time_s` and the fault's start and end (`phases`)."""
    start, end = inputs.instant("fault_start_t"), inputs.instant("fault_end_t")
    recovery = inputs.metric("recovery_time_s")
    if start is None or end is None or recovery is None or inputs.metric("time_to_impact_s") is None:
        return None
    lasted = end - start
    after = recovery - lasted
    if lasted < LONG_FAULT_S or not -BUCKET_SLACK_S <= after <= ROLLBACK_WINDOW_S:
        return None
    return Draft(
        title="The rollback, not the system, did the recovery",
        evidence=(
            f"The fault lasted {seconds(lasted)} and users recovered {seconds(max(0.0, after))} after it was "
            f"undone ({seconds(recovery)} after it started): the service did not route around it."
        ),
        recommendation=(
            "Make the service survive this fault while it lasts: health checks or outlier detection that take "
            "the faulty backend out, retries to the others, replicas in more than one place."
        ),
        t_from=start,
        t_to=start + recovery,
    )


def did_not_recover(inputs: ScenarioInputs) -> Draft | None:
    """The scenario ran to completion but users were still hurt when the observation ended.

    Reads `recovery_time_s` (null: did not recover) and the scenario's status and `phases`."""
    if inputs.scenario.get("status") != "completed" or not inputs.has_metric("recovery_time_s"):
        return None
    if inputs.metric("recovery_time_s") is not None:
        return None
    end, fault_end = inputs.instant("end_t"), inputs.instant("fault_end_t")
    tail = f" ({seconds(end - fault_end)} after the fault was undone)" if end and fault_end else ""
    return Draft(
        title="Did not recover within the observation",
        evidence=f"Users were still affected when the observation ended{tail}.",
        recommendation=(
            "Find what stayed broken (the last seconds of the scenario's charts); if recovery was on its way, "
            "lengthen windows.observe_s so the run can see it."
        ),
        t_from=inputs.instant("fault_start_t"),
        t_to=end,
    )


RULES = (
    Rule("client-timeouts-dominate-recovery", Severity.WARNING, Scope.SCENARIO,
         ("recovery_phases.rerouted", "recovery_phases.users_back", "plan.load.request_timeout_s",
          "metrics.latency_ms.baseline.p99"), client_timeouts_dominate),
    Rule("detection-dominates-recovery", Severity.WARNING, Scope.SCENARIO,
         ("recovery_phases.detected", "metrics.recovery_time_s", "target.node_grace_s",
          "target.node_grace_period_s", "target.lb_health_checks"), detection_dominates),
    Rule("capacity-reduced-until-eviction", Severity.WARNING, Scope.SCENARIO,
         ("recovery_phases.users_back", "recovery_phases.capacity_restored", "target.eviction_s",
          "target.unreachable_toleration_s", "target.not_ready_toleration_s"), capacity_until_eviction),
    Rule("repair-blocked-by-control-plane", Severity.CRITICAL, Scope.SCENARIO,
         ("metrics.control_plane.repair_blocked_s", "metrics.control_plane.write_unavailable_s",
          "target.etcd_members"), repair_blocked),
    Rule("rollback-did-the-recovery", Severity.WARNING, Scope.SCENARIO,
         ("metrics.time_to_impact_s", "metrics.recovery_time_s", "phases"), rollback_recovered),
    Rule("did-not-recover", Severity.CRITICAL, Scope.SCENARIO,
         ("metrics.recovery_time_s", "status", "phases"), did_not_recover),
)  # fmt: skip
"""The recovery rules, in the order they are listed."""

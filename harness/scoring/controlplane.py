"""metrics["control_plane"]: what the control plane did during a scenario.

Pure: lines of `controlplane.jsonl` (written by harness.kubernetes.probes on a cluster and by
harness.testbed.sampler on the testbed; shapes in their module docstrings, the same where the
meaning is the same) and the scenario's Phases in, one dict out. Called by the engine when the
scenario folder has the file, and so by `harness score`.

Windows: **baseline** is [baseline start, fault start); **fault** is [fault start, end] — the
whole observation after the fault started, since control-plane effects (a replacement pod,
a node coming back) often come after the method's last action has ended.

| key | definition |
| --- | --- |
| `api.<window>` | `samples`, `p50_ms`, `p99_ms` (nearest rank over the timed LIST and GET), `error_rate` (ok=false share), `throttled_own_load` (429s while the harness's own load ran under the sampler's identity: left out of the other figures) |
| `readyz_failed_s`, `livez_failed_s` | in the fault window, time covered by failed health samples (each counts until the next sample of its endpoint) |
| `node_not_ready_s` | longest NotReady spell of any node that starts in the fault window (to the end if it never ended) |
| `node_ready_again_s` | from the fault start until the last node that went NotReady is Ready again; null if one never came back |
| `pod_rescheduling_time_s` | as Krkn's pod_rescheduling_time: from a pod's deletion to its replacement being created and scheduled (the slowest pair) |
| `pod_readiness_time_s` | from a pod's deletion to its replacement being ready (the slowest pair) |
| `pods_deleted`, `pods_replaced` | deletions seen in the fault window, and how many got a ready replacement |
| `deployment_unavailable_s` | time in the fault window with some deployment below its desired available replicas |
| `watch_blind_s` | time in the fault window during which the watcher had no current view of some resource: a poll's view is current for `blind_after_s`, so blind runs from the last successful poll + `blind_after_s` to the next successful one (to the end if none came) |
| `watch_coverage` | 1 - `watch_blind_s` / the fault window's length |
| `watch_failed_polls` | failed watcher polls in the fault window |

| `write_unavailable_s` | time in the fault window the harness's own probe writes failed: each failed write opens a span that the next successful write closes (to the end if none does) |
| `repair_blocked_s` | time in the fault window the cluster needed a repair the controller could not make (below) |
| `leader_changes` | leader changes of the control-plane store in the fault window |
| `restore` | a restore drill's RTO and RPO (harness.scoring.restore) |

**Repair blocked.** A `repair` line (the testbed sampler writes one at every change) says what
the cluster needs, from ground truth: `needed` lists the reasons (a replica assigned to a node
that is down, frozen or cut off; an endpoint the load balancer sends to whose replica is dead,
frozen, not ready or on such a node; fewer serving endpoints than desired replicas), and whether the
controller can act: `quorum` (status.json: the controller's last view of etcd) and
`controller_fresh` (status.json rewritten within `stale_after_s`: the controller is running). A
line holds until the next one. The repair is **blocked** while something is needed and the
controller cannot act: etcd without quorum, a controller that is not running, or the harness's
last probe write failed (the controller writes through the same etcd). A repair the controller
is merely waiting to make (a node's grace period, the eviction toleration) is needed but not
blocked.

The `write_unavailable_s`, `repair_blocked_s` and `leader_changes` keys are null where the
sampler does not measure them (no probe writes, no `repair` lines, no testbed `sampler` line:
a Kubernetes target).

A replacement is the earliest pod created after the deletion that no earlier deletion claimed.
Null wherever nothing was observed: no samples in a window, no node went NotReady, no pod was
deleted, a deletion got no replacement, no deployment line, no `poll` line (the `watch_*` keys
of a file written before polls were recorded). When the watcher was blind for the whole fault
window (`watch_coverage` 0), the figures it feeds (nodes, pods, deployments) are null too: a
quiet window nobody saw is not a healthy one.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

from harness.scoring import restore
from harness.scoring.windows import Phases


def summarize(lines: Sequence[Mapping[str, Any]], phases: Phases) -> dict[str, Any]:
    """The control_plane metrics of one scenario trial."""
    rows = sorted((r for r in lines if isinstance(r.get("t"), int | float)), key=lambda r: r["t"])
    start, end = phases.fault_start_t, phases.end_t
    api = [r for r in rows if r.get("kind") == "api"]
    pods = [r for r in rows if r.get("kind") == "pod"]
    rescheduling, readiness, deleted, replaced = _pod_times(pods, start, end)
    not_ready, ready_again = _node_times([r for r in rows if r.get("kind") == "node"], start, end)
    blind_s, failed_polls = _watch_blind([r for r in rows if r.get("kind") == "poll"], start, end)
    coverage = None if blind_s is None or end <= start else round(1.0 - blind_s / (end - start), 6)
    out = {
        "api": {
            "baseline": _api_window([r for r in api if phases.baseline_start_t <= r["t"] < start]),
            "fault": _api_window([r for r in api if start <= r["t"] <= end]),
        },
        "readyz_failed_s": _health_failed_s(rows, "readyz", start, end),
        "livez_failed_s": _health_failed_s(rows, "livez", start, end),
        "node_not_ready_s": _round(not_ready),
        "node_ready_again_s": _round(ready_again),
        "pod_rescheduling_time_s": _round(rescheduling),
        "pod_readiness_time_s": _round(readiness),
        "pods_deleted": deleted,
        "pods_replaced": replaced,
        "deployment_unavailable_s": _round(
            _deployment_unavailable_s([r for r in rows if r.get("kind") == "deployment"], start, end)
        ),
        "watch_blind_s": _round(blind_s),
        "watch_coverage": coverage,
        "watch_failed_polls": failed_polls,
        "write_unavailable_s": _round(write_unavailable_s(rows, start, end)),
        "repair_blocked_s": _round(repair_blocked_s(rows, start, end)),
        "leader_changes": leader_changes(rows, start, end),
        "restore": restore.summarize_restore(rows, start, end),
    }
    if coverage == 0:
        for key in WATCHED_METRICS:
            out[key] = None
    return out


WATCHED_METRICS = (
    "node_not_ready_s", "node_ready_again_s", "pod_rescheduling_time_s", "pod_readiness_time_s",
    "pods_deleted", "pods_replaced", "deployment_unavailable_s",
)  # fmt: skip
"""The figures that come from the watcher's polls, null when it saw none of the fault window."""


def _write_failed_spans(rows: Sequence[Mapping[str, Any]], end: float) -> list[tuple[float, float]]:
    """Spans from a failed probe write to the next successful one (to `end` if none came)."""
    spans: list[tuple[float, float]] = []
    since: float | None = None
    for r in rows:
        if r.get("kind") != "api" or r.get("verb") != "write":
            continue
        if not r.get("ok"):
            since = r["t"] if since is None else since
        elif since is not None:
            spans.append((since, r["t"]))
            since = None
    if since is not None:
        spans.append((since, end))
    return spans


def write_unavailable_s(rows: Sequence[Mapping[str, Any]], start: float, end: float) -> float | None:
    """Seconds of [start, end] the probe writes failed; None without a write that says so.

    Null when no probe write was sent in the window and none that failed before it was still
    unanswered by a success: nothing was measured there.
    """
    writes = [r for r in rows if r.get("kind") == "api" and r.get("verb") == "write"]
    spans = _write_failed_spans(writes, end)
    if not any(start <= r["t"] <= end for r in writes) and not any(lo < start < hi for lo, hi in spans):
        return None
    return _union_length(spans, start, end)


def repair_blocked_s(rows: Sequence[Mapping[str, Any]], start: float, end: float) -> float | None:
    """Seconds of [start, end] a repair was needed and the controller could not make it; None without `repair` lines."""
    repair = [r for r in rows if r.get("kind") == "repair"]
    if not repair:
        return None
    writes_down = _write_failed_spans(rows, end)
    # The state changes only at a repair line or at a span edge of the failed writes.
    edges = sorted({start, end, *(r["t"] for r in repair), *(t for span in writes_down for t in span)})
    total = 0.0
    for lo, hi in itertools.pairwise(e for e in edges if start <= e <= end):
        current = next((r for r in reversed(repair) if r["t"] <= lo), None)
        if current is None or not current.get("needed"):
            continue
        write_failed = any(a <= lo < b for a, b in writes_down)
        if current.get("quorum") is False or current.get("controller_fresh") is False or write_failed:
            total += hi - lo
    return total


def leader_changes(rows: Sequence[Mapping[str, Any]], start: float, end: float) -> int | None:
    """`leader` lines in [start, end]; None unless the testbed sampler wrote the file (a cluster hides its etcd)."""
    if not any(r.get("kind") == "sampler" and r.get("target") == "testbed" for r in rows):
        return None
    return sum(1 for r in rows if r.get("kind") == "leader" and start <= r["t"] <= end)


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest rank, as harness.timeline's histograms."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def _api_window(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    own = [r for r in rows if r.get("own_load") and r.get("status") == 429]
    rows = [r for r in rows if not (r.get("own_load") and r.get("status") == 429)]
    if not rows:
        return {
            "samples": 0,
            "p50_ms": None,
            "p99_ms": None,
            "error_rate": None,
            "throttled_own_load": len(own),
        }
    latencies = sorted(float(r.get("latency_ms", 0.0)) for r in rows)
    failed = sum(1 for r in rows if not r.get("ok"))
    return {
        "samples": len(rows),
        "p50_ms": _round(_quantile(latencies, 0.50)),
        "p99_ms": _round(_quantile(latencies, 0.99)),
        "error_rate": round(failed / len(rows), 6),
        "throttled_own_load": len(own),
    }


def _watch_blind(rows: list[Mapping[str, Any]], start: float, end: float) -> tuple[float | None, int | None]:
    """(seconds of [start, end] some watched resource went unseen, failed polls in it); None without poll lines.

    A successful poll's view counts as current for the line's `blind_after_s`; blind is what
    lies between that and the next successful poll of the resource.
    """
    if not rows:
        return None, None
    spans: list[tuple[float, float]] = []
    blind_since: dict[Any, float] = {}
    for r in rows:
        resource, t, last_ok_t = r.get("resource"), r["t"], r.get("last_ok_t")
        fresh_s = float(r.get("blind_after_s") or 0.0)
        since = last_ok_t + fresh_s if isinstance(last_ok_t, int | float) else None
        if resource == "*":  # the watcher ended early: blind from its last view to the end
            spans.append((since if since is not None else t, end))
        elif r.get("ok"):
            opened = blind_since.pop(resource, None)
            lo = since if since is not None else opened
            if lo is not None and lo < t:
                spans.append((lo, t))
        else:
            blind_since.setdefault(resource, since if since is not None else t)
    spans.extend((since, end) for since in blind_since.values())
    failed = sum(1 for r in rows if not r.get("ok") and r.get("resource") != "*" and start <= r["t"] <= end)
    return _union_length(spans, start, end), failed


def _union_length(spans: list[tuple[float, float]], start: float, end: float) -> float:
    """Length of the union of spans, clipped to [start, end]."""
    total, reach = 0.0, start
    for lo, hi in sorted((max(lo, start), min(hi, end)) for lo, hi in spans):
        lo = max(lo, reach)
        if hi <= lo:
            continue
        total += hi - lo
        reach = hi
    return total


def _health_failed_s(rows: list[Mapping[str, Any]], endpoint: str, start: float, end: float) -> float | None:
    samples = [r for r in rows if r.get("kind") == "health" and r.get("endpoint") == endpoint]
    if not any(start <= r["t"] <= end for r in samples):
        return None
    gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(samples)]
    typical = sorted(gaps)[len(gaps) // 2] if gaps else 1.0
    total = 0.0
    for i, sample in enumerate(samples):
        until = samples[i + 1]["t"] if i + 1 < len(samples) else sample["t"] + typical
        lo, hi = max(sample["t"], start), min(until, end)
        if not sample.get("ok") and hi > lo:
            total += hi - lo
    return round(total, 3)


def _node_times(rows: list[Mapping[str, Any]], start: float, end: float) -> tuple[float | None, float | None]:
    """(longest NotReady spell starting in the window, fault start → last node Ready again)."""
    state: dict[str, tuple[bool, float]] = {}
    spells: list[tuple[float, float | None]] = []
    for r in rows:
        name, ready, t = r.get("name"), bool(r.get("ready")), r["t"]
        previous = state.get(name)
        if previous is not None and previous[0] and not ready and start <= t <= end:
            spells.append((t, None))
            state[name] = (False, t)
            continue
        if previous is not None and not previous[0] and ready:
            for i, (s, e) in enumerate(spells):
                if e is None and s == previous[1]:
                    spells[i] = (s, t)
        state[name] = (ready, t)
    if not spells:
        return None, None
    longest = max((e if e is not None else end) - s for s, e in spells)
    ends = [e for _, e in spells]
    ready_again = None if any(e is None for e in ends) else max(e for e in ends if e is not None) - start
    return longest, ready_again


def _pod_times(
    rows: list[Mapping[str, Any]], start: float, end: float
) -> tuple[float | None, float | None, int, int]:
    deletions = [r for r in rows if r.get("event") == "deleted" and start <= r["t"] <= end]
    created = [r for r in rows if r.get("event") == "created"]
    first: dict[tuple[str, str], float] = {}
    for r in rows:
        first.setdefault((r.get("name"), r.get("event")), r["t"])
    claimed: set[str] = set()
    rescheduling: list[float] = []
    readiness: list[float] = []
    replaced = 0
    for d in deletions:
        replacement = next((c for c in created if c["t"] >= d["t"] and c["name"] not in claimed), None)
        if replacement is None:
            continue
        claimed.add(replacement["name"])
        scheduled = first.get((replacement["name"], "scheduled"))
        ready = first.get((replacement["name"], "ready"))
        if scheduled is not None:
            rescheduling.append(scheduled - d["t"])
        if ready is not None:
            readiness.append(ready - d["t"])
            replaced += 1
    return (
        max(rescheduling) if rescheduling else None,
        max(readiness) if readiness else None,
        len(deletions),
        replaced,
    )


def _deployment_unavailable_s(rows: list[Mapping[str, Any]], start: float, end: float) -> float | None:
    if not rows:
        return None
    state: dict[str, bool] = {}  # name -> short of desired
    total = 0.0
    since: float | None = None
    for r in rows:
        t = min(max(r["t"], start), end)
        short_before = any(state.values())
        state[r.get("name")] = int(r.get("available") or 0) < int(r.get("desired") or 0)
        short_now = any(state.values())
        if short_now and not short_before:
            since = t
        elif short_before and not short_now and since is not None:
            total += t - since
            since = None
    if since is not None:
        total += end - since
    return total

"""Where the fault sits on the timeline: phase markers in, the scenario's key instants out.

The engine writes markers while a scenario runs (its own phase changes, and every Chaos
Toolkit activity's start and end through harness.chaos.control); `phases_from_markers`
reduces them to the four instants scoring needs. Called by the engine (live, to decide
when a scenario has recovered, and after it) and by `harness score`.

Marker shapes (one JSON object a line in markers.jsonl):

    {"t": 1795750000.1, "kind": "phase", "phase": "warmup" | "baseline" | "experiment" | "observe" | "stopped"}
    {"t": ..., "kind": "activity_start" | "activity_end", "name": "crash-a-node", "type": "action" | "probe",
     "section": "steady_state_before" | "method" | "rollbacks" | "steady_state_after",
     "status": "succeeded" | "failed" | null}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.phases import Marker


@dataclass(frozen=True)
class Phases:
    """The instants (Unix seconds) that split a scenario's timeline into windows."""

    baseline_start_t: float
    """The "baseline" phase marker: load has warmed up, the reference window starts."""
    fault_start_t: float
    """Start of the first action of the experiment's method (the first method activity if it has no action)."""
    fault_end_t: float
    """Start of the undo: the first method action marked `undo` (one that repeats a rollback) or the
    first rollback action, whichever comes first (the fault lasts until undone); else the end of the
    last method activity."""
    end_t: float
    """The "stopped" phase marker (load stops), else the last marker."""


def phases_from_markers(markers: Sequence[Mapping[str, Any]]) -> Phases:
    """The scenario's phases from its markers; ValueError when they cannot place a fault."""
    rows = sorted(_checked(markers), key=lambda m: m["t"])
    if not rows:
        raise ValueError("no markers: the scenario has no baseline phase and no method activity")
    baseline = [m["t"] for m in rows if m["kind"] == "phase" and m.get("phase") == Marker.BASELINE]
    if not baseline:
        raise ValueError("markers have no baseline phase: the engine did not reach the baseline window")
    starts = [m for m in rows if m["kind"] == "activity_start" and m.get("section") == "method"]
    if not starts:
        raise ValueError("markers have no method activity: the experiment never reached its method")
    actions = [m for m in starts if m.get("type") == "action" and not m.get("undo")]
    fault_start_t = (actions or starts)[0]["t"]
    stopped = [m["t"] for m in rows if m["kind"] == "phase" and m.get("phase") == Marker.STOPPED]
    end_t = stopped[0] if stopped else rows[-1]["t"]
    # The engine ends observation when scoring sees recovery in the buckets closed so far and
    # marks where those ended: the window ends there, so the final score judges the same data
    # the decision did (not the seconds of load between the decision and the stop).
    observed = [m["t"] for m in rows if m["kind"] == "phase" and m.get("phase") == Marker.OBSERVED]
    if observed:
        end_t = min(end_t, observed[0])
    rollbacks = [
        m["t"]
        for m in rows
        if m["kind"] == "activity_start"
        and m.get("section") == "rollbacks"
        and m.get("type") == "action"
        and m["t"] >= fault_start_t
    ]
    rollbacks += [
        m["t"] for m in starts if m.get("undo") and m.get("type") == "action" and m["t"] >= fault_start_t
    ]
    method_ends = [m["t"] for m in rows if m["kind"] == "activity_end" and m.get("section") == "method"]
    if rollbacks:
        fault_end_t = min(rollbacks)
    elif method_ends:
        fault_end_t = max(method_ends)
    else:
        fault_end_t = end_t  # the method never finished (the run was cut short): the fault lasted to the end
    baseline_start_t = baseline[0]
    if fault_start_t < baseline_start_t:
        raise ValueError(
            f"the fault starts (t={fault_start_t}) before the baseline phase (t={baseline_start_t}): "
            "there is no clean reference window"
        )
    return Phases(
        baseline_start_t=baseline_start_t,
        fault_start_t=fault_start_t,
        fault_end_t=max(fault_end_t, fault_start_t),
        end_t=end_t,
    )


def _checked(markers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Markers with a numeric t and a kind; ValueError naming the first one without."""
    out = []
    for number, marker in enumerate(markers, start=1):
        t = marker.get("t") if isinstance(marker, Mapping) else None
        kind = marker.get("kind") if isinstance(marker, Mapping) else None
        if isinstance(t, bool) or not isinstance(t, int | float) or not isinstance(kind, str):
            raise ValueError(f"marker {number} needs a numeric 't' and a 'kind': {marker!r}")
        out.append({**marker, "t": float(t)})
    return out

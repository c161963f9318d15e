"""The names of a scenario's phases: the engine's phase markers and the windows metrics are given for.

Low level on purpose: the engine writes the markers, scoring reads them, the report draws them,
and plans, gates and comparisons name the windows (`latency_ms.applied.p95`). Members are StrEnums, so
they compare equal to, format as and serialise as the plain strings in markers.jsonl and
result.json; parse with `Marker(value)`.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Marker", "Window"]


class Marker(StrEnum):
    """A phase marker the engine writes to markers.jsonl (`{"kind": "phase", "phase": ...}`), in order."""

    WARMUP = "warmup"
    """Load starts; the generator and the service settle before anything is measured."""
    BASELINE = "baseline"
    """The reference window starts: what the fault is compared with."""
    EXPERIMENT = "experiment"
    """The Chaos Toolkit experiment starts (its steady state first, then the method)."""
    OBSERVE = "observe"
    """The experiment ended; load stays on until recovery has lasted the stability window."""
    OBSERVED = "observed"
    """Where the engine decided recovery (the end of the buckets it judged); observation ends here."""
    STOPPED = "stopped"
    """Load stops (or the scenario was cut short)."""


class Window(StrEnum):
    """A window of the timeline that metrics are given for (`latency_ms.<window>.p95`).

    `applied` and `fault` both start at the fault but end differently: `applied` is while the fault
    was in place (to its rollback), `fault` is its impact (to recovery). A fault that never made
    users unhealthy recovers at once, so its `fault` window is empty while `applied` holds every
    second it was in place: gate on `applied` for what users felt while the fault was active.
    """

    BASELINE = "baseline"
    """From the baseline marker to the fault's start."""
    APPLIED = "applied"
    """While the fault was applied: from its start to its undo (the rollback), or to the end of the
    method when nothing undoes it (`fault_start_t` to `fault_end_t`)."""
    FAULT = "fault"
    """The impact window: from the fault's start to recovery (or the end, without recovery); empty
    when the fault had no impact."""
    RECOVERY = "recovery"
    """From recovery to the end of observation."""

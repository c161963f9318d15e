"""Phases from markers: where the fault starts and ends, where the observation stops."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from harness.scoring import Phases, phases_from_markers

T0 = 1_795_750_000.0


def phase(t: float, name: str) -> dict[str, Any]:
    return {"t": T0 + t, "kind": "phase", "phase": name}


def activity(t: float, edge: str, section: str, type_: str = "action", name: str = "x") -> dict[str, Any]:
    status = "succeeded" if edge == "end" else None
    return {
        "t": T0 + t,
        "kind": f"activity_{edge}",
        "name": name,
        "type": type_,
        "section": section,
        "status": status,
    }


def markers(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    """A typical scenario: warm-up, baseline, steady-state probe, a probe then an action in the method."""
    return [
        phase(0, "warmup"),
        phase(10, "baseline"),
        phase(40, "experiment"),
        activity(40.1, "start", "steady_state_before", "probe"),
        activity(40.2, "end", "steady_state_before", "probe"),
        activity(41.0, "start", "method", "probe", "check-before"),
        activity(41.5, "end", "method", "probe", "check-before"),
        activity(42.0, "start", "method", "action", "crash-a-node"),
        activity(43.0, "end", "method", "action", "crash-a-node"),
        activity(50.0, "start", "method", "probe", "check-after"),
        activity(51.0, "end", "method", "probe", "check-after"),
        *extra,
    ]


class TestPhasesFromMarkers:
    def test_fault_starts_with_the_first_method_action_not_a_probe(self) -> None:
        """The fault starts at the first action of the method; a probe before it does not count."""
        got = phases_from_markers(markers(phase(90, "observe"), phase(120, "stopped")))
        assert got == Phases(T0 + 10, T0 + 42.0, T0 + 51.0, T0 + 120)

    def test_a_method_of_probes_only_starts_at_its_first_activity(self) -> None:
        """Without an action in the method, the first method activity is the fault start."""
        rows = [m for m in markers() if m.get("type") != "action"]
        assert phases_from_markers(rows).fault_start_t == T0 + 41.0

    def test_the_first_rollback_action_ends_the_fault(self) -> None:
        """A fault lasts until rolled back: the first rollback action's start is the fault end."""
        rows = markers(
            activity(60.0, "start", "rollbacks", "probe"),
            activity(61.0, "start", "rollbacks", "action", "restore-node"),
            activity(65.0, "end", "rollbacks", "action", "restore-node"),
            activity(66.0, "start", "rollbacks", "action", "second-rollback"),
        )
        assert phases_from_markers(rows).fault_end_t == T0 + 61.0

    def test_an_undo_in_the_method_ends_the_fault(self) -> None:
        """A method that ends with the undo (marked `undo`: it repeats a rollback) and a wait: the fault
        ends where the undo starts, not at the rollbacks after the steady state."""
        rows = markers(
            {**activity(52.0, "start", "method", "action", "delete-the-policy"), "undo": True},
            activity(52.5, "end", "method", "action", "delete-the-policy"),
            {**activity(52.6, "start", "method", "action", "wait"), "undo": True},
            activity(70.0, "end", "method", "action", "wait"),
            activity(75.0, "start", "rollbacks", "action", "delete-the-policy"),
        )
        got = phases_from_markers(rows)
        assert (got.fault_start_t, got.fault_end_t) == (T0 + 42.0, T0 + 52.0)

    def test_without_rollback_the_fault_ends_with_the_last_method_activity(self) -> None:
        """No rollback action: the fault ends when the last method activity ends."""
        assert phases_from_markers(markers()).fault_end_t == T0 + 51.0

    def test_a_method_that_never_finished_lasts_to_the_end(self) -> None:
        """A method with no activity end (the run was cut short) is a fault until the end."""
        rows = [m for m in markers() if not (m["kind"] == "activity_end" and m["section"] == "method")]
        got = phases_from_markers([*rows, phase(70, "stopped")])
        assert got.fault_end_t == got.end_t == T0 + 70

    @pytest.mark.parametrize(
        ("extra", "end"),
        [
            ((phase(120, "stopped"), activity(121, "end", "steady_state_after", "probe")), 120.0),
            ((activity(80, "start", "steady_state_after", "probe"),), 80.0),
            ((), 51.0),
        ],
    )
    def test_end_is_the_stopped_marker_else_the_last_marker(self, extra: tuple, end: float) -> None:
        """The end is the "stopped" phase marker, and the last marker when there is none."""
        assert phases_from_markers(markers(*extra)).end_t == T0 + end

    def test_the_observed_marker_ends_the_window_where_the_engine_decided(self) -> None:
        """The engine stops observing when the buckets closed so far show recovery; the seconds of
        load between that decision and the stop are not judged (they were not observed)."""
        rows = markers(phase(130, "stopped"), phase(117.5, "observed"))
        assert phases_from_markers(rows).end_t == T0 + 117.5
        assert phases_from_markers(markers(phase(130, "stopped"))).end_t == T0 + 130

    def test_marker_order_in_the_file_does_not_matter(self) -> None:
        """Markers are placed by their t, not their position (background activities interleave)."""
        assert phases_from_markers(list(reversed(markers()))) == phases_from_markers(markers())

    def test_phases_are_a_plain_dataclass_the_engine_can_store_and_replace(self) -> None:
        """The engine stores asdict(phases) in result.json and replaces end_t while scoring live."""
        got = phases_from_markers(markers())
        assert dataclasses.asdict(got)["fault_start_t"] == T0 + 42.0
        assert dataclasses.replace(got, end_t=T0 + 45.0).end_t == T0 + 45.0

    @pytest.mark.parametrize(
        ("rows", "message"),
        [
            ([], "no markers"),
            ([m for m in markers() if m.get("phase") != "baseline"], "no baseline phase"),
            ([m for m in markers() if m.get("section") != "method"], "no method activity"),
            ([phase(10, "baseline"), activity(5, "start", "method")], "before the baseline"),
            ([*markers(), {"kind": "phase", "phase": "stopped"}], "numeric 't'"),
            ([*markers(), {"t": "soon", "kind": "phase"}], "numeric 't'"),
        ],
    )
    def test_markers_that_cannot_place_a_fault_are_an_error(self, rows: list, message: str) -> None:
        """Missing baseline, missing method activity or malformed markers raise ValueError saying which."""
        with pytest.raises(ValueError, match=message):
            phases_from_markers(rows)

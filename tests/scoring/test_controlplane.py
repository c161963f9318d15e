"""metrics["control_plane"] from hand-made controlplane.jsonl lines."""

from __future__ import annotations

from typing import Any

import pytest

from harness.plan import gates
from harness.scoring import controlplane
from harness.scoring.windows import Phases

PHASES = Phases(baseline_start_t=100.0, fault_start_t=110.0, fault_end_t=112.0, end_t=130.0)


def api(t: float, ms: float, ok: bool = True) -> dict[str, Any]:
    return {"t": t, "kind": "api", "verb": "list", "resource": "pods", "latency_ms": ms, "ok": ok,
            "status": 200 if ok else 500, "error": None if ok else "500 Internal Server Error"}  # fmt: skip


def health(t: float, ok: bool, endpoint: str = "readyz") -> dict[str, Any]:
    return {"t": t, "kind": "health", "endpoint": endpoint, "ok": ok, "latency_ms": 2.0,
            "failed_checks": [] if ok else ["etcd"]}  # fmt: skip


def poll(t: float, resource: str, ok: bool, last_ok_t: float | None, fresh_s: float = 0.0) -> dict[str, Any]:
    return {"t": t, "kind": "poll", "resource": resource, "ok": ok, "latency_ms": 5000.0 if not ok else 3.0,
            "status": None, "error": None if ok else "ReadTimeoutError", "last_ok_t": last_ok_t,
            "blind_after_s": fresh_s}  # fmt: skip


def pod(t: float, name: str, event: str, node: str | None = None) -> dict[str, Any]:
    return {"t": t, "kind": "pod", "name": name, "event": event, "node": node}


class TestApi:
    def test_latency_and_errors_per_window(self) -> None:
        """Baseline and fault windows get nearest-rank p50/p99 and the failed share."""
        lines = [api(100 + i, 10.0 + i) for i in range(10)] + [
            api(110 + i, 50.0, ok=i % 2 == 0) for i in range(10)
        ]
        out = controlplane.summarize(lines, PHASES)["api"]
        assert out["baseline"] == {"samples": 10, "p50_ms": 14.0, "p99_ms": 19.0, "error_rate": 0.0,
                                   "throttled_own_load": 0}  # fmt: skip
        assert out["fault"] == {"samples": 10, "p50_ms": 50.0, "p99_ms": 50.0, "error_rate": 0.5,
                                "throttled_own_load": 0}  # fmt: skip

    def test_an_empty_window_is_null(self) -> None:
        """No sample in a window: every figure of it is null."""
        out = controlplane.summarize([api(111, 5.0)], PHASES)["api"]
        assert out["baseline"] == {"samples": 0, "p50_ms": None, "p99_ms": None, "error_rate": None,
                                   "throttled_own_load": 0}  # fmt: skip

    def test_429s_of_our_own_load_are_not_api_errors(self) -> None:
        """A 429 sent while our own load shared the sampler's identity is counted apart, not as an error."""
        throttled = {
            **api(111, 1.0, ok=False),
            "status": 429,
            "error": "429 Too Many Requests",
            "own_load": True,
        }
        other = {
            **api(112, 1.0, ok=False),
            "status": 429,
            "error": "429 Too Many Requests",
            "own_load": False,
        }
        out = controlplane.summarize([api(110, 5.0), throttled, throttled, other], PHASES)["api"]["fault"]
        assert out["throttled_own_load"] == 2
        assert out["samples"] == 2 and out["error_rate"] == 0.5, "a 429 with no load of ours is the API's"


class TestHealth:
    def test_failed_seconds_count_until_the_next_sample(self) -> None:
        """Three failed samples a second apart, then a good one: three seconds failed."""
        lines = [
            health(108, True),
            health(111, False),
            health(112, False),
            health(113, False),
            health(114, True),
        ]
        out = controlplane.summarize(lines, PHASES)
        assert out["readyz_failed_s"] == 3.0 and out["livez_failed_s"] is None


class TestPods:
    def test_rescheduling_and_readiness_from_the_deletion(self) -> None:
        """As Krkn: deletion to replacement scheduled, and to replacement ready; the slowest pair counts."""
        lines = [
            pod(111.0, "a", "deleted", "n1"), pod(111.5, "a2", "created"), pod(112.0, "a2", "scheduled", "n2"),
            pod(114.0, "a2", "ready", "n2"),
            pod(115.0, "b", "deleted", "n1"), pod(115.2, "b2", "created"), pod(118.0, "b2", "scheduled", "n3"),
            pod(119.0, "b2", "ready", "n3"),
        ]  # fmt: skip
        out = controlplane.summarize(lines, PHASES)
        assert out["pod_rescheduling_time_s"] == 3.0 and out["pod_readiness_time_s"] == 4.0
        assert (out["pods_deleted"], out["pods_replaced"]) == (2, 2)

    def test_a_deletion_without_replacement_is_null(self) -> None:
        """No pod created after the deletion: nothing to time."""
        out = controlplane.summarize([pod(111.0, "a", "deleted")], PHASES)
        assert (
            out["pod_rescheduling_time_s"] is None and out["pods_replaced"] == 0 and out["pods_deleted"] == 1
        )

    def test_deletions_before_the_fault_do_not_count(self) -> None:
        """A rollout's churn in the baseline is not the fault's doing."""
        lines = [pod(105.0, "a", "deleted"), pod(105.5, "a2", "created"), pod(106.0, "a2", "scheduled")]
        assert controlplane.summarize(lines, PHASES)["pods_deleted"] == 0


class TestNodesAndDeployments:
    def test_node_spell_and_ready_again(self) -> None:
        """The longest NotReady spell, and from the fault start to the last node back."""
        lines = [
            {"t": 101.0, "kind": "node", "name": "n1", "ready": True},
            {"t": 101.0, "kind": "node", "name": "n2", "ready": True},
            {"t": 111.0, "kind": "node", "name": "n1", "ready": False},
            {"t": 112.0, "kind": "node", "name": "n2", "ready": False},
            {"t": 116.0, "kind": "node", "name": "n2", "ready": True},
            {"t": 121.0, "kind": "node", "name": "n1", "ready": True},
        ]
        out = controlplane.summarize(lines, PHASES)
        assert out["node_not_ready_s"] == 10.0 and out["node_ready_again_s"] == 11.0

    def test_a_node_that_never_comes_back(self) -> None:
        """Its spell runs to the end; ready-again is null."""
        lines = [{"t": 101.0, "kind": "node", "name": "n1", "ready": True},
                 {"t": 120.0, "kind": "node", "name": "n1", "ready": False}]  # fmt: skip
        out = controlplane.summarize(lines, PHASES)
        assert out["node_not_ready_s"] == 10.0 and out["node_ready_again_s"] is None

    @pytest.mark.parametrize(
        ("changes", "expected"),
        [
            ([(101.0, 3), (112.0, 2), (117.0, 3)], 5.0),
            ([(101.0, 3), (125.0, 2)], 5.0),  # still short at the end
            ([(101.0, 3)], 0.0),
            ([], None),
        ],
    )
    def test_deployment_unavailable_seconds(
        self, changes: list[tuple[float, int]], expected: float | None
    ) -> None:
        """Time in the fault window with available below desired."""
        lines = [
            {"t": t, "kind": "deployment", "name": "subs", "available": a, "desired": 3} for t, a in changes
        ]
        assert controlplane.summarize(lines, PHASES)["deployment_unavailable_s"] == expected


class TestWatchBlindness:
    def test_failed_polls_make_the_window_partly_blind(self) -> None:
        """Nodes unseen from 112 to 118 and pods from 115 to 116: 6 s blind of a 20 s fault window."""
        lines = [
            poll(101.0, "nodes", True, None), poll(101.0, "pods", True, None),
            poll(113.0, "nodes", False, 112.0), poll(115.0, "nodes", False, 112.0),
            poll(115.5, "pods", False, 115.0), poll(116.0, "pods", True, 115.0),
            poll(118.0, "nodes", True, 112.0),
        ]  # fmt: skip
        out = controlplane.summarize(lines, PHASES)
        assert out["watch_blind_s"] == 6.0 and out["watch_coverage"] == 0.7
        assert out["watch_failed_polls"] == 3

    def test_a_watcher_that_never_comes_back_is_blind_to_the_end_and_says_nothing(self) -> None:
        """Polls failing from before the fault to the end: coverage 0, and no figure it feeds claims quiet."""
        lines = [
            poll(101.0, "pods", True, None), poll(108.0, "pods", False, 107.5),
            {"t": 101.0, "kind": "deployment", "name": "subs", "available": 3, "desired": 3},
        ]  # fmt: skip
        out = controlplane.summarize(lines, PHASES)
        assert out["watch_blind_s"] == 20.0 and out["watch_coverage"] == 0.0
        assert out["pods_deleted"] is None and out["deployment_unavailable_s"] is None

    def test_a_view_stays_current_for_blind_after_s(self) -> None:
        """Polls 3 s apart with views current for 2 s: 1 s of each gap is blind; a 1.5 s gap is none."""
        lines = [poll(101.0, "nodes", True, None, 2.0), poll(113.0, "nodes", True, 110.0, 2.0),
                 poll(116.0, "nodes", True, 113.0, 2.0), poll(117.5, "nodes", False, 116.0, 2.0),
                 poll(117.5, "nodes", True, 116.0, 2.0)]  # fmt: skip
        out = controlplane.summarize(lines, PHASES)
        assert out["watch_blind_s"] == 2.0 and out["watch_failed_polls"] == 1

    def test_the_watcher_stopping_early_is_blind_from_its_last_view(self) -> None:
        """A `*` line (the watcher ended) makes the rest of the window blind."""
        lines = [poll(101.0, "nodes", True, None),
                 {**poll(125.0, "*", False, 124.5), "error": "watcher stopped: boom"}]  # fmt: skip
        assert controlplane.summarize(lines, PHASES)["watch_blind_s"] == 5.5

    def test_no_poll_lines_is_not_observed(self) -> None:
        """A file with no poll line says nothing about blindness: null, not full coverage."""
        out = controlplane.summarize([api(111, 5.0)], PHASES)
        assert out["watch_blind_s"] is None and out["watch_coverage"] is None

    def test_a_gate_can_require_the_watcher_to_have_seen_the_window(self) -> None:
        """`control_plane.watch_coverage > 0.9` is a known gate name, and fails on a window 30 % blind."""
        lines = [poll(101.0, "nodes", True, None), poll(113.0, "nodes", False, 112.0),
                 poll(118.0, "nodes", True, 112.0)]  # fmt: skip
        gate = gates.parse("control_plane.watch_coverage > 0.9")
        gates.validate_names(gate, gates.METRIC_NAMES)
        result = gates.evaluate(gate, {"control_plane": controlplane.summarize(lines, PHASES)})
        assert result.passed is False and result.value == 0.7

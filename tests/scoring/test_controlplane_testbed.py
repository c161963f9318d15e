"""metrics["control_plane"] from the testbed sampler's lines: write unavailability, repair blocked,
leader changes and restore drills (RTO, RPO), from hand-made lines."""

from __future__ import annotations

from typing import Any

import pytest

from harness.plan import gates
from harness.scoring import controlplane, restore
from harness.scoring.windows import Phases

PHASES = Phases(baseline_start_t=100.0, fault_start_t=110.0, fault_end_t=112.0, end_t=130.0)
HEADER = {"t": 100.0, "kind": "sampler", "target": "testbed", "probe_interval_s": 0.5, "stale_after_s": 3.0}


def write(t: float, ok: bool = True, seq: int = 0, ms: float = 2.0) -> dict[str, Any]:
    return {"t": t, "kind": "api", "verb": "write", "resource": "probe", "seq": seq, "latency_ms": ms, "ok": ok,
            "status": None, "error": None if ok else "EtcdUnavailableError"}  # fmt: skip


def read(t: float, ok: bool = True, ms: float = 1.0) -> dict[str, Any]:
    return {"t": t, "kind": "api", "verb": "read", "resource": "probe", "latency_ms": ms, "ok": ok}


def repair(t: float, needed: tuple[str, ...] = (), quorum: bool = True, fresh: bool = True,
           serving: int = 3, desired: int = 3) -> dict[str, Any]:  # fmt: skip
    return {"t": t, "kind": "repair", "needed": list(needed), "serving": serving, "desired": desired,
            "quorum": quorum, "controller_fresh": fresh}  # fmt: skip


def event(t: float, name: str, **fields: Any) -> dict[str, Any]:
    return {"t": t, "kind": "restore", "event": name, **fields}


def summary(lines: list[dict[str, Any]]) -> dict[str, Any]:
    return controlplane.summarize([HEADER, *lines], PHASES)


class TestWriteUnavailable:
    def test_from_a_failed_write_to_the_next_success(self) -> None:
        """Failed writes at 114, 114.5 and 115 with a success at 116 are 2 s unavailable, not the fault's length."""
        lines = [write(113), write(114, ok=False), write(114.5, ok=False), write(115, ok=False), write(116)]
        assert summary(lines)["write_unavailable_s"] == 2.0

    def test_never_recovered_counts_to_the_end(self) -> None:
        """A failure with no later success is unavailable to the end of the observation."""
        assert (
            summary([write(111), write(120, ok=False), write(125, ok=False)])["write_unavailable_s"] == 10.0
        )

    def test_failure_before_the_fault_counts_from_the_fault_start(self) -> None:
        """A span that opened in the baseline is clipped to the fault window."""
        assert summary([write(108, ok=False), write(113)])["write_unavailable_s"] == 3.0

    def test_failure_at_the_end_edge_is_clipped(self) -> None:
        """A failure at the last instant of the window adds nothing past the end."""
        assert summary([write(111), write(130, ok=False), write(131)])["write_unavailable_s"] == 0.0

    def test_no_samples_is_null(self) -> None:
        """No write line at all (a Kubernetes target, or no sampler) is not measured."""
        out = summary([read(111)])
        assert out["write_unavailable_s"] is None
        assert controlplane.summarize([], PHASES)["write_unavailable_s"] is None

    def test_no_write_in_the_window_is_null(self) -> None:
        """Writes only in the baseline, all fine: nothing was measured in the fault window."""
        assert summary([write(101), write(105)])["write_unavailable_s"] is None

    def test_all_writes_ok_is_zero(self) -> None:
        """Writes that all succeed are 0 s unavailable."""
        assert summary([write(110 + i) for i in range(20)])["write_unavailable_s"] == 0.0

    def test_writes_and_reads_feed_the_api_windows(self) -> None:
        """Probe writes and reads are the api samples of the testbed: latency and error rate per window."""
        lines = [write(105, ms=4.0), read(105.1, ms=2.0), write(115, ok=False, ms=500.0), read(115.1, ms=1.0)]
        api = summary(lines)["api"]
        assert api["baseline"]["samples"] == 2 and api["baseline"]["p99_ms"] == 4.0
        assert api["fault"] == {"samples": 2, "p50_ms": 1.0, "p99_ms": 500.0, "error_rate": 0.5,
                                "throttled_own_load": 0}  # fmt: skip


class TestRepairBlocked:
    def test_needed_and_no_quorum(self) -> None:
        """Blocked from the moment a needed repair meets a control plane without quorum, until either ends."""
        lines = [repair(105), repair(112, quorum=False), repair(115, ("stale endpoint",), quorum=False),
                 repair(121, ("stale endpoint",)), repair(123)]  # fmt: skip
        assert summary(lines)["repair_blocked_s"] == 6.0

    def test_needed_but_the_controller_is_only_waiting(self) -> None:
        """A repair the controller can make (it waits out a grace period) is not blocked."""
        assert (
            summary([repair(105), repair(112, ("replica on a down node",)), repair(125)])["repair_blocked_s"]
            == 0.0
        )

    def test_controller_not_running(self) -> None:
        """A stale status.json (the controller is not running) blocks a needed repair."""
        lines = [repair(111, ("serving 2 of 3",), fresh=False, serving=2), repair(114, serving=3)]
        assert summary(lines)["repair_blocked_s"] == 3.0

    def test_failed_probe_writes_block(self) -> None:
        """While the harness's own writes fail, the controller cannot write either: a needed repair is blocked."""
        lines = [repair(110, ("stale endpoint",)), write(111), write(112, ok=False), write(113, ok=False),
                 write(116), repair(118)]  # fmt: skip
        assert summary(lines)["repair_blocked_s"] == 4.0

    def test_never_unblocked_counts_to_the_end(self) -> None:
        """Still blocked at the end: counted to the end of the observation."""
        assert summary([repair(120, ("stale endpoint",), quorum=False)])["repair_blocked_s"] == 10.0

    def test_state_from_before_the_window_carries_in(self) -> None:
        """A blocked state that began in the baseline counts from the fault start."""
        assert (
            summary([repair(104, ("stale endpoint",), quorum=False), repair(111)])["repair_blocked_s"] == 1.0
        )

    def test_no_repair_lines_is_null(self) -> None:
        """Without repair lines (a Kubernetes target) the metric is not measured."""
        assert summary([write(111)])["repair_blocked_s"] is None


class TestLeaderChanges:
    def test_counted_in_the_fault_window(self) -> None:
        """Leader lines in the fault window count; the baseline's do not."""
        lines = [{"t": t, "kind": "leader", "member": "m", "previous": "p"} for t in (105, 111, 111.5, 129)]
        assert summary(lines)["leader_changes"] == 3

    def test_zero_on_the_testbed_null_elsewhere(self) -> None:
        """The testbed sampler's header makes no change a 0; without it (a cluster) it is null."""
        assert summary([])["leader_changes"] == 0
        assert controlplane.summarize([write(111)], PHASES)["leader_changes"] is None


def drill(*, rto_write_t: float = 118.0, reconciled_t: float = 119.0, missing: list[int] | None = None,
          readback: bool = True) -> list[dict[str, Any]]:  # fmt: skip
    """Writes every second 100-129 (seq = t - 100); snapshot at 112 (revision 50), loss at 115
    (revision 80), restored at 117; writes fail from 115 until `rto_write_t`."""
    lines: list[dict[str, Any]] = [repair(100)]
    for i in range(30):
        t = 100.0 + i
        lines.append(write(t, ok=not (115 <= t < rto_write_t), seq=i))
    lines += [
        event(112.0, "etcd_snapshot_taken", revision=50, path="/tmp/s.db"),
        event(115.0, "control_plane_data_lost", revision=80),
        event(
            117.0, "etcd_restored", snapshot_t=112.0, snapshot_revision=50, lost_revision=80, interval_s=3.0
        ),
        repair(115.5, quorum=False),
        repair(117.5, ("serving 2 of 3",), serving=2),
        repair(reconciled_t),
    ]
    if readback:
        lines.append({"t": 131.0, "kind": "readback", "ok": True, "checked": 30,
                      "missing": [12, 13, 14] if missing is None else missing})  # fmt: skip
    return lines


class TestRestore:
    def test_rto_and_rpo(self) -> None:
        """RTO runs to writes accepted and the controller reconciled; RPO counts what the restore took back."""
        out = summary(drill())["restore"]
        assert out == {"rto_s": 4.0, "rpo_writes": 3, "rpo_revisions": 30, "rpo_age_s": 3.0,
                       "snapshot_interval_s": 3.0}  # fmt: skip

    def test_rto_is_the_later_of_writes_and_reconcile(self) -> None:
        """Reconciled before writes are accepted again: the RTO waits for the writes (the first one sent
        at 121 and acknowledged 2 ms later)."""
        lines = [line for line in drill(rto_write_t=121.0, reconciled_t=119.0)]
        assert summary(lines)["restore"]["rto_s"] == 6.002

    def test_a_write_sent_during_the_outage_counts_when_it_was_acknowledged(self) -> None:
        """A probe write sent at 116, while the members were down, that waited 1.5 s for them: the control
        plane accepted writes again at 117.5, not 116 (the controller reconciled at 116.5)."""
        lines = [line for line in drill(rto_write_t=115.0, reconciled_t=116.5)
                 if not (line.get("verb") == "write" and line["t"] == 116.0) and line["t"] != 117.5]  # fmt: skip
        lines.append(write(116.0, seq=16, ms=1500.0))
        assert summary(lines)["restore"]["rto_s"] == 2.5

    def test_never_recovered_is_null(self) -> None:
        """Writes never accepted again by the end: no RTO (write_unavailable_s still says how long)."""
        out = summary(drill(rto_write_t=200.0))
        assert out["restore"]["rto_s"] is None
        assert out["write_unavailable_s"] == 15.0

    def test_never_reconciled_is_null(self) -> None:
        """Writes accepted but the controller never reconciled: no RTO."""
        lines = [line for line in drill() if not (line.get("kind") == "repair" and line["t"] == 119.0)]
        assert summary(lines)["restore"]["rto_s"] is None

    def test_nothing_lost(self) -> None:
        """A read-back with nothing missing: 0 writes lost, RPO age 0."""
        out = summary(drill(missing=[]))["restore"]
        assert (out["rpo_writes"], out["rpo_age_s"]) == (0, 0.0)

    def test_no_readback_leaves_writes_unmeasured(self) -> None:
        """Without a read-back the lost writes are not known; the revisions still are."""
        out = summary(drill(readback=False))["restore"]
        assert (out["rpo_writes"], out["rpo_age_s"], out["rpo_revisions"]) == (None, None, 30)

    def test_no_restore_is_null(self) -> None:
        """A scenario without a restore: every restore metric is null."""
        assert summary([write(111)])["restore"] == dict.fromkeys(restore.KEYS)

    def test_a_write_accepted_before_the_members_went_down_is_not_recovery(self) -> None:
        """The first write after the loss that still landed on the doomed data does not end the RTO."""
        lines = drill()
        lines = [w for w in lines if not (w.get("verb") == "write" and w["t"] == 115.0)]
        lines.append(write(115.2, ok=True, seq=99))
        lines.append(write(115.6, ok=False, seq=100))
        assert summary(lines)["restore"]["rto_s"] == 4.0

    def test_gates_name_the_restore_metrics(self) -> None:
        """`control_plane.restore.rto_s < 30` is a known gate and reads the nested value."""
        gate = gates.parse("control_plane.restore.rto_s < 30")
        result = gates.evaluate(gate, {"control_plane": summary(drill())})
        assert result.passed and result.value == 4.0

    @pytest.mark.parametrize("key", restore.KEYS)
    def test_null_gate_fails_with_a_reason(self, key: str) -> None:
        """A gate on a restore metric of a scenario without a restore fails, as for any unmeasured metric."""
        result = gates.evaluate(
            gates.parse(f"control_plane.restore.{key} < 1"), {"control_plane": summary([])}
        )
        assert not result.passed

"""metrics["control_plane"]["restore"]: what a control-plane restore drill cost.

Pure: the `restore`, `api` (probe writes), `repair` and `readback` lines of `controlplane.jsonl`
(written by harness.testbed.sampler) and the fault window in, one dict out. Called by
harness.scoring.controlplane.summarize. The ground-truth events the sampler copies into the
`restore` lines (harness.testbed.groundtruth):

    etcd_snapshot_taken     {t, revision, path}
    control_plane_data_lost {t, revision}            the moment acknowledged state was destroyed
    etcd_restored           {t, snapshot_t, snapshot_revision, lost_revision, interval_s}

| key | definition |
| --- | --- |
| `rto_s` | from the loss to the first instant at which the control plane accepts the harness's probe writes again **and** the controller has reconciled: the acknowledgement (`t` + `latency_ms`) of the first successful probe write sent after the loss (and after the last failed one before the restore finished), or the first `repair` line after it, whichever is first to show quorum, a fresh controller, nothing to repair and serving endpoints equal to the desired replicas; null if that was not seen by the end |
| `rpo_writes` | acknowledged probe writes missing at the read-back after the scenario: lost by the restore; null without a read-back |
| `rpo_revisions` | `lost_revision - snapshot_revision`: every control-plane write (the controller's, the agents', the probes') the restore undid |
| `rpo_age_s` | at the loss, the age of the oldest lost acknowledged probe write (0 when none was lost; null without a read-back) |
| `snapshot_interval_s` | the `interval_s` of the restore: how far apart the backups were (in the drill, from the snapshot to the loss) |

Every key is null when the fault window holds no `control_plane_data_lost` event: the scenario
had no restore.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

KEYS = ("rto_s", "rpo_writes", "rpo_revisions", "rpo_age_s", "snapshot_interval_s")


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def reconciled(line: Mapping[str, Any]) -> bool:
    """A `repair` line that shows the controller has nothing left to do."""
    serving, desired = line.get("serving"), line.get("desired")
    return (
        not line.get("needed")
        and line.get("quorum") is True
        and line.get("controller_fresh") is True
        and isinstance(serving, int)
        and isinstance(desired, int)
        and serving >= desired
    )


def summarize_restore(rows: Sequence[Mapping[str, Any]], start: float, end: float) -> dict[str, Any]:
    """The restore metrics of the fault window [start, end]; rows sorted by t."""
    out: dict[str, Any] = dict.fromkeys(KEYS)
    restore = [r for r in rows if r.get("kind") == "restore"]
    lost = next(
        (r for r in restore if r.get("event") == "control_plane_data_lost" and start <= r["t"] <= end), None
    )
    if lost is None:
        return out
    loss_t = float(lost["t"])
    restored = next((r for r in restore if r.get("event") == "etcd_restored" and r["t"] >= loss_t), None)
    if restored is not None:
        snap, gone = restored.get("snapshot_revision"), restored.get("lost_revision")
        if isinstance(snap, int) and isinstance(gone, int):
            out["rpo_revisions"] = max(0, gone - snap)
        if isinstance(restored.get("interval_s"), int | float):
            out["snapshot_interval_s"] = _round(float(restored["interval_s"]))
    writes = [r for r in rows if r.get("kind") == "api" and r.get("verb") == "write"]
    out["rto_s"] = _round(_rto(rows, writes, loss_t, restored["t"] if restored else end, end))
    readback = next((r for r in reversed(rows) if r.get("kind") == "readback" and r.get("ok")), None)
    if readback is not None:
        missing = set(readback.get("missing") or ())
        out["rpo_writes"] = len(missing)
        lost_t = [
            float(w["t"]) for w in writes if w.get("ok") and w.get("seq") in missing and w["t"] <= loss_t
        ]
        out["rpo_age_s"] = _round(loss_t - min(lost_t)) if lost_t else 0.0
    return out


def _rto(
    rows: Sequence[Mapping[str, Any]],
    writes: Sequence[Mapping[str, Any]],
    loss_t: float,
    restored_t: float,
    end: float,
) -> float | None:
    # A write accepted between the loss event and the members going down is not the restored
    # control plane: count from after the last failed write before the restore finished.
    failed = [float(w["t"]) for w in writes if not w.get("ok") and loss_t <= w["t"] <= restored_t]
    after = max([loss_t, *failed])
    first = next((w for w in writes if w.get("ok") and after < w["t"] <= end), None)
    if first is None:
        return None
    # Writes are accepted again when that write was acknowledged, not when it was sent: a write
    # sent while the members were down waits (up to the client's timeout) for them to come back.
    accepted = _acknowledged(first)
    repair = [r for r in rows if r.get("kind") == "repair"]
    current = next((r for r in reversed(repair) if r["t"] <= accepted), None)
    if current is not None and reconciled(current):
        return accepted - loss_t
    again = next((float(r["t"]) for r in repair if accepted < r["t"] <= end and reconciled(r)), None)
    return None if again is None else again - loss_t


def _acknowledged(write: Mapping[str, Any]) -> float:
    """When a probe write was acknowledged: its `t` (sent) plus its `latency_ms`."""
    latency_ms = write.get("latency_ms")
    return float(write["t"]) + (float(latency_ms) / 1000.0 if isinstance(latency_ms, int | float) else 0.0)

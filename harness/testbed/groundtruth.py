"""The testbed's ground-truth event log: what really happened, and when.

Every part of the testbed (fault actions, node agents, the controller, the load-balancer
sync) appends one JSON line per event to `events.jsonl` in the testbed folder. Each
line is written with a single O_APPEND write, so lines from many processes never
interleave. The harness's measurements are checked against this log.

    {"t": 1795748271.25, "event": "replica_died", "replica": "subs-2", "node": "node-b", ...}
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any


class Event(StrEnum):
    FAULT_APPLIED = "fault_applied"
    FAULT_REMOVED = "fault_removed"
    REPLICA_STARTED = "replica_started"
    REPLICA_READY = "replica_ready"
    REPLICA_NOT_READY = "replica_not_ready"
    REPLICA_MARKED_NOT_READY = "replica_marked_not_ready"
    """The controller overwrote a ready status: its node is NotReady, or the report is stale."""
    REPLICA_DIED = "replica_died"
    REPLICA_STOPPED = "replica_stopped"
    ENDPOINT_ADDED = "endpoint_added"
    ENDPOINT_REMOVED = "endpoint_removed"
    NODE_READY = "node_ready"
    NODE_NOT_READY = "node_not_ready"
    REPLICA_SCHEDULED = "replica_scheduled"
    REPLICA_EVICTED = "replica_evicted"
    ETCD_LEADER_CHANGED = "etcd_leader_changed"
    QUORUM_LOST = "quorum_lost"
    QUORUM_REGAINED = "quorum_regained"
    ETCD_SNAPSHOT_TAKEN = "etcd_snapshot_taken"
    """{revision, path}: a scheduled snapshot (harness.testbed.backups)."""
    CONTROL_PLANE_DATA_LOST = "control_plane_data_lost"
    """{revision}: acknowledged control-plane state destroyed; revision is the last one before."""
    ETCD_RESTORED = "etcd_restored"
    """{snapshot_t, snapshot_revision, lost_revision, interval_s}: the control plane is back from a
    snapshot; everything after snapshot_revision up to lost_revision is gone."""
    TESTBED_UP = "testbed_up"
    TESTBED_DOWN = "testbed_down"


class EventLog:
    """Appends events to one file; safe to use from several processes at once."""

    def __init__(self, path: Path, source: str) -> None:
        self.path = path
        self.source = source

    def record(self, event: Event, t: float | None = None, **fields: Any) -> dict[str, Any]:
        line = {
            "t": round(time.time() if t is None else t, 6),
            "event": event.value,
            "source": self.source,
            **fields,
        }
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return line


@dataclass(frozen=True)
class Record:
    t: float
    event: Event
    fields: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def read_events(path: Path) -> list[Record]:
    """All events in order of time (a missing file is an empty log)."""
    return sorted(iter_events(path), key=lambda r: r.t)


def iter_events(path: Path) -> Iterator[Record]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return
    for raw in text.splitlines():
        try:
            line = json.loads(raw)
            yield Record(float(line.pop("t")), Event(line.pop("event")), line)
        except (ValueError, KeyError):
            continue  # a line being written right now


def first(records: list[Record], event: Event, after: float = 0.0, **match: Any) -> Record | None:
    """The first event of a kind after a time whose fields match."""
    for r in records:
        if r.event is event and r.t >= after and all(r.get(k) == v for k, v in match.items()):
            return r
    return None

"""Scheduled etcd snapshots: the testbed's backup job, and the catalogue of what it wrote.

    python -m harness.testbed.backups --dir DIR --interval-s 30

A team's etcd backup is a job that saves a snapshot every so often (a cron job running
`etcdctl snapshot save`); what a restore can bring back is the latest snapshot, so the
interval bounds the data lost. This process is that job: it saves a snapshot at once and then
every `interval_s`, into DIR/etcd-backups/, each file named for when it was taken and the
revision it holds, and records `etcd_snapshot_taken` in the ground truth. A snapshot that
fails (the control plane is down) is logged and retried at the next tick, as a cron job would.

Started and stopped by harness.testbed.faults (`schedule_etcd_snapshots`,
`stop_etcd_snapshots`); its pid is in the state file, so `testbed down` stops it too.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from harness.errors import HarnessError
from harness.testbed import state as tbstate
from harness.testbed.etcd import EtcdClient
from harness.testbed.groundtruth import Event, EventLog

FOLDER = "etcd-backups"
KEEP = 5
"""Snapshots kept (older ones are deleted): a restore uses the latest; a few more help a reader."""
_NAME = re.compile(r"^snapshot-(\d+)-r(\d+)\.db$")


@dataclass(frozen=True)
class Snapshot:
    path: Path
    t: float
    """When the snapshot was taken (Unix seconds)."""
    revision: int
    """The cluster's revision read just before the snapshot: the snapshot holds every change up to
    it (and possibly a few more that landed while it was taken)."""


def folder(root: Path) -> Path:
    return root / FOLDER


def snapshots(root: Path) -> list[Snapshot]:
    """The snapshots the job has written, oldest first (files being written are not listed)."""
    out = []
    for path in folder(root).glob("snapshot-*.db"):
        match = _NAME.match(path.name)
        if match:
            out.append(Snapshot(path, int(match[1]) / 1000, int(match[2])))
    return sorted(out, key=lambda s: (s.t, s.revision))


def latest(root: Path) -> Snapshot | None:
    found = snapshots(root)
    return found[-1] if found else None


def take_snapshot(root: Path, client: EtcdClient, events: EventLog) -> Snapshot:
    """Save one snapshot into the backups folder and record it; older ones beyond KEEP go."""
    out = folder(root)
    out.mkdir(parents=True, exist_ok=True)
    revision = client.revision()
    t = time.time()
    path = out / f"snapshot-{int(t * 1000)}-r{revision}.db"
    client.snapshot_save(path)
    events.record(Event.ETCD_SNAPSHOT_TAKEN, t=t, revision=revision, path=str(path))
    for old in snapshots(root)[:-KEEP]:
        old.path.unlink(missing_ok=True)
    return Snapshot(path, t, revision)


def run(root: Path, interval_s: float, stopping: threading.Event) -> None:
    """Snapshot now and every interval_s until stopped; the schedule does not drift with the work."""
    state = tbstate.load(root)
    events = EventLog(root / "events.jsonl", source="backups")
    client = EtcdClient(state.client_endpoints(), timeout_s=2.0)
    next_t = time.monotonic()
    try:
        while not stopping.is_set():
            try:
                take_snapshot(root, client, events)
            except HarnessError as exc:  # the control plane is down: this backup is missed
                print(f"{time.strftime('%H:%M:%S')} snapshot failed: {exc}", file=sys.stderr, flush=True)
            next_t += interval_s
            while next_t <= time.monotonic():  # a tick missed while a snapshot hung is skipped
                next_t += interval_s
            stopping.wait(next_t - time.monotonic())
    finally:
        client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="Scheduled etcd snapshots of a testbed")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--interval-s", type=float, required=True)
    args = parser.parse_args()
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    run(args.dir, args.interval_s, stopping)


if __name__ == "__main__":
    main()

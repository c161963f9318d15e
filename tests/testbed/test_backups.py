"""The backup job's catalogue and schedule, without etcd: what a restore would pick, and how the
job keeps its schedule. The real snapshots, loss and restore are in test_restore.py."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InputError
from harness.testbed import backups, faults
from harness.testbed.groundtruth import Event, EventLog, read_events


class FakeClient:
    """EtcdClient's revision and snapshot_save, with a revision that moves as writes would."""

    def __init__(self) -> None:
        self.rev = 41

    def revision(self) -> int:
        self.rev += 7
        return self.rev

    def snapshot_save(self, path: Path) -> None:
        path.write_bytes(b"bbolt")


class TestCatalogue:
    def test_latest_is_the_newest_whole_snapshot(self, tmp_path: Path) -> None:
        """Files are named for their time and revision; half-written ones and strangers are ignored."""
        folder = backups.folder(tmp_path)
        folder.mkdir()
        for name in ("snapshot-1000-r5.db", "snapshot-3000-r9.db", "snapshot-2000-r7.db",
                     "snapshot-4000-r11.db.part", "notes.txt"):  # fmt: skip
            (folder / name).write_text("x")
        assert [(s.t, s.revision) for s in backups.snapshots(tmp_path)] == [(1.0, 5), (2.0, 7), (3.0, 9)]
        latest = backups.latest(tmp_path)
        assert latest is not None and latest.path.name == "snapshot-3000-r9.db"

    def test_no_folder_no_snapshot(self, tmp_path: Path) -> None:
        """Before the job ever ran there is nothing to restore."""
        assert backups.latest(tmp_path) is None

    def test_each_snapshot_is_recorded_and_only_the_newest_are_kept(self, tmp_path: Path) -> None:
        """etcd_snapshot_taken carries t, revision and path; beyond KEEP the oldest files go."""
        events = EventLog(tmp_path / "events.jsonl", source="test")
        client: Any = FakeClient()
        taken = [backups.take_snapshot(tmp_path, client, events) for _ in range(backups.KEEP + 2)]
        assert [s.path for s in backups.snapshots(tmp_path)] == [s.path for s in taken[-backups.KEEP :]]
        records = read_events(tmp_path / "events.jsonl")
        assert [r.event for r in records] == [Event.ETCD_SNAPSHOT_TAKEN] * len(taken)
        assert [(r.get("revision"), r.get("path")) for r in records] == [
            (s.revision, str(s.path)) for s in taken
        ]


class TestSchedule:
    def test_missed_snapshots_are_retried_at_the_next_tick(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A snapshot that fails (etcd down) does not stop the job; the next tick tries again."""
        calls: list[int] = []
        stopping = threading.Event()

        def flaky(root: Path, client: object, events: object) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise faults.HarnessError("etcd is unavailable")
            if len(calls) >= 3:
                stopping.set()

        class State:
            def client_endpoints(self) -> list[str]:
                return ["http://127.0.0.1:1"]  # never dialled: take_snapshot is the stand-in

        monkeypatch.setattr(backups, "take_snapshot", flaky)
        monkeypatch.setattr(backups.tbstate, "load", lambda root: State())
        backups.run(tmp_path, 0.01, stopping)
        assert len(calls) == 3


def test_the_loss_point_must_fall_within_the_interval(tmp_path: Path) -> None:
    """A loss at or after the next snapshot's time would never come: refused as bad input."""
    (tmp_path / faults.LEDGER).write_text('[{"id": "1", "kind": "etcd_snapshots", "target": "cluster", '
                                          '"params": {"interval_s": 10.0}, "t": 0}]')  # fmt: skip
    with pytest.raises(InputError, match="below snapshot_interval_s"):
        faults.wait_snapshot_age(tmp_path, 10.0)

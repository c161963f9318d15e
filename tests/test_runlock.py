"""The run lock of a testbed folder (harness.runlock): held, released, left by a killed holder."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness import runlock
from harness.errors import HarnessError

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from harness import runlock
    lock = runlock.acquire(Path(sys.argv[1]), sys.argv[2])
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
    lock.release()
    print("released", flush=True)
    """
)


def start_holder(root: Path, run_id: str, hold_s: float = 60.0) -> subprocess.Popen[str]:
    """Another process holding the lock, as a second `harness run` would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), run_id, str(hold_s)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    return proc


def stop(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.fixture
def holder_proc(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = start_holder(tmp_path, "run-a")
    try:
        yield proc
    finally:
        stop(proc)


class TestHeld:
    def test_a_second_taker_is_refused_naming_the_holder(
        self, tmp_path: Path, holder_proc: subprocess.Popen[str]
    ) -> None:
        """While another process holds it, acquire fails at once with the holder's run id, pid and start."""
        started = time.monotonic()
        with pytest.raises(runlock.RunLockHeldError) as info:
            runlock.acquire(tmp_path, "run-b")
        assert time.monotonic() - started < 1.0
        message = str(info.value)
        assert "run run-a" in message and f"pid {holder_proc.pid}" in message and "started 20" in message
        assert info.value.exit_code == 2
        assert info.value.holder is not None and info.value.holder["run_id"] == "run-a"

    def test_the_body_is_json_naming_the_holder(
        self, tmp_path: Path, holder_proc: subprocess.Popen[str]
    ) -> None:
        """DIR/run.lock holds run id, host, pid and start time, and holder() reads it back."""
        body = json.loads((tmp_path / "run.lock").read_text())
        assert body["run_id"] == "run-a" and body["pid"] == holder_proc.pid
        assert body["host"] and abs(body["started"] - time.time()) < 30
        assert runlock.holder(tmp_path) == body

    def test_waiting_gives_up_after_the_wait(
        self, tmp_path: Path, holder_proc: subprocess.Popen[str]
    ) -> None:
        """With a wait, acquire tries until it runs out, tells on_wait once, then names the holder."""
        told: list[dict | None] = []
        started = time.monotonic()
        with pytest.raises(runlock.RunLockHeldError, match=r"after waiting 1 s"):
            runlock.acquire(tmp_path, "run-b", wait_s=1.0, on_wait=told.append)
        assert 0.9 < time.monotonic() - started < 3.0
        assert len(told) == 1 and told[0] is not None and told[0]["run_id"] == "run-a"

    def test_refuse_if_held_names_the_holder_unless_forced(
        self, tmp_path: Path, holder_proc: subprocess.Popen[str]
    ) -> None:
        """`testbed down` on a held folder is refused (with a hint at --force); forced, it goes on."""
        with pytest.raises(HarnessError, match=r"testbed down: .* in use by run run-a .* --force"):
            runlock.refuse_if_held(tmp_path, "down")
        runlock.refuse_if_held(tmp_path, "down", force=True)


class TestReleased:
    def test_a_released_lock_is_free_and_leaves_no_previous(self, tmp_path: Path) -> None:
        """After a clean release nobody holds it, and the next holder has nothing to heal."""
        lock = runlock.acquire(tmp_path, "run-a")
        assert runlock.holder(tmp_path)["run_id"] == "run-a"  # type: ignore[index]
        lock.release()
        assert runlock.holder(tmp_path) is None
        runlock.refuse_if_held(tmp_path, "cleanup")
        with runlock.open_run_lock(tmp_path, "run-b") as second:
            assert second.previous is None and second.record()["run_id"] == "run-b"
            assert second.record()["took_over_from"] is None

    def test_a_waiting_run_gets_the_lock_when_the_holder_ends(self, tmp_path: Path) -> None:
        """--wait: the holder lets go after about 1.5 s; the waiter takes it then, not at its deadline."""
        proc = start_holder(tmp_path, "run-a", hold_s=1.5)
        try:
            lock = runlock.acquire(tmp_path, "run-b", wait_s=30)
            assert 0.5 < lock.waited_s < 10 and lock.previous is None
            lock.release()
        finally:
            stop(proc)

    def test_the_folder_removed_under_the_lock_is_not_shared(self, tmp_path: Path) -> None:
        """`testbed down` removes the folder, run.lock with it; a lock on the removed file is no
        lock: acquire takes the file at the path."""
        root = tmp_path / "tb"
        first = runlock.acquire(root, "run-a")
        (root / "run.lock").unlink()
        second = runlock.acquire(root, "run-b")
        with pytest.raises(runlock.RunLockHeldError, match="run run-b"):
            runlock.acquire(root, "run-c")
        first.release()
        second.release()

    def test_a_waiter_outlives_the_holder_removing_the_folder(self, tmp_path: Path) -> None:
        """A run that started the testbed removes the folder when it is done; the run waiting for
        it makes the folder again and takes the lock."""
        root = tmp_path / "tb"
        first = runlock.acquire(root, "run-a")
        timer = threading.Timer(0.5, lambda: (shutil.rmtree(root), first.release()))
        timer.start()
        try:
            second = runlock.acquire(root, "run-b", wait_s=10)
        finally:
            timer.join()
        assert second.previous is None and runlock.holder(root)["run_id"] == "run-b"  # type: ignore[index]
        second.release()


class TestKilledHolder:
    def test_sigkill_frees_the_lock_and_the_next_holder_sees_who_died(self, tmp_path: Path) -> None:
        """The kernel drops a killed holder's lock; the next acquire succeeds and reports the dead one."""
        proc = start_holder(tmp_path, "run-a")
        stop(proc)
        assert runlock.holder(tmp_path) is None
        runlock.refuse_if_held(tmp_path, "down")  # a dead holder blocks nothing
        lock = runlock.acquire(tmp_path, "run-b")
        try:
            assert lock.previous is not None and lock.previous["run_id"] == "run-a"
            assert lock.previous["pid"] == proc.pid
            assert lock.record()["took_over_from"]["run_id"] == "run-a"
        finally:
            lock.release()

    def test_a_child_the_holder_started_does_not_keep_the_lock(self, tmp_path: Path) -> None:
        """A process the holder spawned (a testbed part, Locust) outlives it without holding its lock."""
        script = HOLDER.replace(
            'print("held", flush=True)',
            'import subprocess; c = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"], '
            "start_new_session=True, close_fds=False); print('held', c.pid, flush=True)",
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path), "run-a", "60"],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)},
        )
        assert proc.stdout is not None
        word, child = proc.stdout.readline().split()
        assert word == "held"
        try:
            stop(proc)
            os.kill(int(child), 0)  # the child is still there
            lock = runlock.acquire(tmp_path, "run-b")
            lock.release()
        finally:
            os.kill(int(child), signal.SIGKILL)


class TestDescribe:
    @pytest.mark.parametrize(
        ("holder", "expected"),
        [
            (None, "a run that has not yet written who it is"),
            ({}, "a run that has not yet written who it is"),
            (
                {"run_id": "r1", "pid": 42, "host": "h", "started": 0},
                "run r1 (pid 42 on host h, started 1970-01-01 00:00:00 UTC)",
            ),
            ({"run_id": "r1"}, "run r1 (pid ? on host ?, started ?)"),
        ],
    )
    def test_describe(self, holder: dict | None, expected: str) -> None:
        """The holder as the messages name it, also when parts of its body are missing."""
        assert runlock.describe(holder) == expected

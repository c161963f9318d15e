"""A folder a live run holds is not brought up, taken down or cleaned up under it by `harness
testbed`. (Testbeds in two folders up side by side, each on its own load-balancer port, are shown
by tests/engine/test_interleaved_run.py, whose run holds both at once.)"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.testbed import cluster
from tests.test_runlock import start_holder, stop

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def holding(root: Path) -> Iterator[int]:
    """A live process holding the folder's run lock (the run itself is not needed); its pid."""
    proc = start_holder(root, "run-held", hold_s=120)
    try:
        yield proc.pid
    finally:
        stop(proc)


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A folder whose run lock a live process holds."""
    root = tmp_path / "tb"
    with holding(root) as pid:
        yield root, pid


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("command", [["testbed", "up"], ["testbed", "down"], ["cleanup"]])
def test_a_held_folder_is_refused_with_the_holder_named(held: tuple[Path, int], command: list[str]) -> None:
    """up, down and cleanup on a folder a live run holds: exit 2, the run named, nothing started."""
    root, pid = held
    try:
        result = harness(*command, "--dir", str(root))
    finally:
        if (root / "testbed.json").exists():
            cluster.down(root)  # it was not refused: leave nothing running
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "in use by run run-held" in output and f"pid {pid}" in output and "Traceback" not in output
    assert ("--force" in output) == (command != ["testbed", "up"])
    assert not (root / "testbed.json").exists()


@pytest.mark.parametrize("command", [["testbed", "down"], ["cleanup"]])
def test_force_acts_on_a_held_folder(held: tuple[Path, int], command: list[str]) -> None:
    """--force goes ahead (here: nothing to do, as no testbed runs in the folder)."""
    root, _ = held
    result = harness(*command, "--dir", str(root), "--force")
    assert result.returncode == 0, result.stdout + result.stderr


def test_status_of_a_held_folder_without_a_testbed_names_the_holder(held: tuple[Path, int]) -> None:
    """A run holding the folder while it brings its testbed up: status says so, not only 'no testbed'."""
    root, pid = held
    result = harness("testbed", "status", "--dir", str(root))
    assert result.returncode == 3 and "Traceback" not in result.stderr
    assert f"no testbed in {root}" in result.stderr and f"held by run run-held (pid {pid}" in result.stderr


def test_a_wait_out_of_range_is_refused(tmp_path: Path) -> None:
    """`--wait -1` is a usage error: exit 2 before anything runs."""
    result = harness("run", "local-quick", "--wait", "-1", "--dir", str(tmp_path / "tb"))
    assert result.returncode == 2 and "--wait" in result.stderr
    assert not (tmp_path / "tb").exists()


def test_status_names_the_holder(managed, tmp_path: Path) -> None:
    """`harness testbed status` says which run holds the testbed, and that it is free otherwise."""
    with holding(managed.root) as pid:
        shown = harness("testbed", "status", "--dir", str(managed.root))
        info = json.loads(harness("testbed", "status", "--json", "--dir", str(managed.root)).stdout)
    assert f"run lock: held by run run-held (pid {pid}" in shown.stdout, shown.stdout + shown.stderr
    assert info["lock"]["run_id"] == "run-held" and info["lock"]["pid"] == pid
    free = harness("testbed", "status", "--dir", str(managed.root))
    assert "run lock: free" in free.stdout

"""Two runs against one testbed folder: the second is refused naming the first, or waits with
--wait; a run that takes over the lock of a killed run heals that run's faults first."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import runlock
from harness.testbed import faults
from tests.engine.test_interrupts import fault_applied, start_run, write_plan
from tests.testbed.conftest import serving, wait_for

pytestmark = pytest.mark.slow


def plan_file(tmp: Path, experiment: str = "replica-kill.yaml") -> Path:
    windows = {"warmup_s": 2, "baseline_s": 3, "observe_s": 12, "stability_s": 3}
    return write_plan(tmp, "concurrent", 4, windows, [("victim", experiment, None)])


def finish(proc: subprocess.Popen[str], timeout_s: float = 240) -> tuple[int, str]:
    out, _ = proc.communicate(timeout=timeout_s)
    return proc.returncode, out


def stop_orphans(reports: Path) -> None:
    """The Locust processes a SIGKILLed run left (their command lines name its run folder), by pid."""
    found = subprocess.run(["pgrep", "-f", f"locust.*{reports}"], capture_output=True, text=True)
    for pid in found.stdout.split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def result_of(reports: Path) -> dict:
    (found,) = list(reports.glob("*/result.json"))
    return json.loads(found.read_text())


def test_a_second_run_is_refused_naming_the_first_and_a_waiting_one_runs_after(
    managed, tmp_path: Path
) -> None:
    """Run B against a held testbed exits 3 at once with A's run id, pid and start; run C with
    --wait starts only after A has let go, and each result.json records the lock it held."""
    wait_for(lambda: serving(managed), 60, "a healthy testbed")
    plan = plan_file(tmp_path)
    first = start_run(plan, tmp_path / "a", managed.root)
    waiter: subprocess.Popen[str] | None = None
    try:
        holder = wait_for(lambda: runlock.holder(managed.root), 60, "run A holding the testbed")
        assert isinstance(holder, dict) and holder["pid"] == first.pid

        started = time.monotonic()
        refused = subprocess.run(
            [sys.executable, "-m", "harness", "run", str(plan), "--reports", str(tmp_path / "b"),
             "--dir", str(managed.root)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        output = refused.stdout + refused.stderr
        assert refused.returncode == 2, output
        assert time.monotonic() - started < 30
        assert f"run {holder['run_id']}" in output and f"pid {first.pid}" in output and "started 20" in output
        assert "--wait" in output and "Traceback" not in output
        assert result_of(tmp_path / "b")["status"] == "failed"  # it says why, and injected nothing

        waiter = start_run(plan, tmp_path / "c", managed.root, "--wait", "300")
        code_a, out_a = finish(first)
        code_c, out_c = finish(waiter)
    finally:
        for proc in (first, waiter):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert code_a in (0, 1), out_a
    assert code_c in (0, 1), out_c
    assert "is in use by run " + holder["run_id"] in out_c and "waiting up to 300 s" in out_c
    a, c = result_of(tmp_path / "a"), result_of(tmp_path / "c")
    lock_a, lock_c = a["target"]["lock"], c["target"]["lock"]
    assert lock_a["run_id"] == a["run_id"] and lock_a["pid"] == first.pid and lock_a["waited_s"] < 5
    assert lock_a["path"] == str(managed.root.resolve() / "run.lock") and lock_a["took_over_from"] is None
    assert lock_c["run_id"] == c["run_id"] and lock_c["waited_s"] > 2
    assert lock_c["started"] >= a["ended"], "C took the testbed before A had finished with it"
    assert runlock.holder(managed.root) is None


def test_a_run_taking_over_from_a_killed_run_heals_its_fault_first(managed, tmp_path: Path) -> None:
    """Run A is SIGKILLed with a replica frozen; the kernel frees its lock; run B takes it over,
    unfreezes the replica before its own baseline, and says whose lock it took."""
    wait_for(lambda: serving(managed), 60, "a healthy testbed")
    plan = plan_file(tmp_path, "long-freeze.yaml")
    first = start_run(plan, tmp_path / "a", managed.root)
    try:
        wait_for(lambda: fault_applied(tmp_path / "a", managed.root), 90, "run A's fault applied")
        holder = runlock.holder(managed.root)
        assert holder is not None and holder["pid"] == first.pid
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
        stop_orphans(tmp_path / "a")
    assert faults.ledger(managed.root), "the killed run left its fault applied"
    assert runlock.holder(managed.root) is None

    (tmp_path / "b").mkdir()
    second = start_run(plan_file(tmp_path / "b"), tmp_path / "c", managed.root)
    code, out = finish(second)
    assert code in (0, 1), out
    lock = result_of(tmp_path / "c")["target"]["lock"]
    assert lock["took_over_from"]["run_id"] == holder["run_id"] and lock["took_over_from"]["pid"] == first.pid
    assert any("node-a1 undone" in line for line in lock["healed"]), lock["healed"]
    assert "died holding the testbed" in out
    assert not faults.ledger(managed.root)

"""Waiting for process groups to go: a process that vanishes while it is looked at is no error."""

from __future__ import annotations

import builtins
import subprocess
from typing import Any

import pytest

from harness import children


def test_a_leader_gone_between_the_two_looks_is_judged_by_its_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """killpg saw the group, then reading the leader's /proc entry raised ESRCH (it just exited):
    `wait_gone` must go on judging the group, not raise ProcessLookupError out of `cluster.down`."""
    leader = subprocess.Popen(["sleep", "30"], start_new_session=True)
    vanished = f"/proc/{leader.pid}/stat"
    calls = {"n": 0}

    def racing_open(path: Any, *args: Any, **kwargs: Any) -> Any:
        if path == vanished and calls["n"] == 0:
            calls["n"] += 1
            raise ProcessLookupError(3, "No such process")
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(children, "open", racing_open, raising=False)
    try:
        assert children.wait_gone([leader.pid], 0.2) == [leader.pid]  # the group still has its sleep
        assert calls["n"] == 1
    finally:
        leader.kill()
        leader.wait()
    assert children.wait_gone([leader.pid], 2.0) == []

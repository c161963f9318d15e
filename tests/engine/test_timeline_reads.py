"""A real run reads each scenario's timeline once: no full re-read from scenario start to result.

The engine extends one live Series per running scenario (abort watch, progress line, recovery
watch), reads the last lines once the load has stopped, and scores and draws that Series. Every
read of the file is recorded here: together they must cover the file exactly once.
"""

from __future__ import annotations

from itertools import pairwise

import pytest

from tests.conftest import SharedRun

pytestmark = pytest.mark.slow


def test_a_run_reads_its_timeline_once(replica_kill_run: SharedRun) -> None:
    """From the first tick to result.json and report.html, the timeline's bytes are read once each
    (the shared replica-kill run, whose every read of a timeline was recorded: tests/conftest.py;
    its plan has an abort condition, so the abort watch reads the live series as well)."""
    run = replica_kill_run
    scenario, engine = run.scenario, run.engine
    assert scenario["status"] == "completed" and scenario["metrics"] is not None, scenario
    timeline = run.sdir / "timeline.jsonl"
    size = timeline.stat().st_size
    ranges = [(a, b) for p, a, b in run.reads if p == timeline]
    assert len(ranges) > 10, "the live series was extended tick by tick"
    assert ranges[0][0] == 0 and ranges[-1][1] == size
    assert all(a == prev_b for (_, prev_b), (a, _) in pairwise(ranges)), (
        "each read starts where the last ended: no byte is read twice, no full re-read"
    )
    assert scenario["metrics"]["requests"] > 0 and (engine.run_dir / "report.html").exists()
    # Opens: one per read that found new bytes, plus the engine's look at the end line for the
    # workers count (the file's last 4 kB); scoring and the report opened nothing.
    assert len([p for p in run.opened if p == timeline]) <= len(ranges) + 1

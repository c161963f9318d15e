"""One `harness run` on two testbed profiles: two run folders sharing a batch id, whose trials
took turns in time, each side scored on a testbed of its own that the run brought up beside
--dir and took down. One trial a side keeps CI short: the order over several blocks (AB, BA, …)
is tested with stand-in engines in test_interleave.py."""

from __future__ import annotations

import contextlib
import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.testbed import cluster
from tests.engine.test_interrupts import write_plan

pytestmark = pytest.mark.slow
SIDES = ("self-managed", "managed")


@pytest.fixture
def base(tmp_path: Path) -> Iterator[Path]:
    """The --dir of the run; whatever testbed a failed run left in BASE-PROFILE is taken down."""
    base = tmp_path / "tb"
    yield base
    for side in SIDES:
        with contextlib.suppress(Exception):  # nothing there is the normal case
            cluster.down(base.with_name(f"tb-{side}"))


def test_two_profiles_take_turns_and_share_a_batch(base: Path, tmp_path: Path) -> None:
    """One block: self-managed then managed, not overlapping; both folders are scored, each on
    its own testbed (both up at once, on their own ports), one batch."""
    windows = {"warmup_s": 1, "baseline_s": 2, "observe_s": 8, "stability_s": 2}
    plan = write_plan(tmp_path, "interleaved", 4, windows, [("victim", "replica-kill-brief.yaml", None)])
    reports = tmp_path / "reports"
    flags = [arg for side in SIDES for arg in ("--profile", side)]
    run = subprocess.run(
        [sys.executable, "-m", "harness", "run", str(plan), "--trials", "1", "--reports", str(reports),
         "--dir", str(base), *flags],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    output = run.stdout + run.stderr
    assert run.returncode in (0, 1), output[-3000:]
    assert "Traceback" not in output

    results = {}
    for path in reports.glob("*/result.json"):
        result = json.loads(path.read_text())
        results[result["target"]["profile"]] = (path.parent, result)
    assert sorted(results) == sorted(SIDES)
    urls = {result["target"]["url"] for _, result in results.values()}
    assert len(urls) == 2, "two testbeds up at once, each its own load-balancer port"
    batches = {result["batch"] for _, result in results.values()}
    assert len(batches) == 1 and None not in batches
    for name, (_, result) in results.items():
        assert result["status"] == "completed"
        folder = base.with_name(f"tb-{name}")
        assert result["target"]["lock"]["path"] == str(folder.resolve() / "run.lock"), "its own testbed"
        assert not (folder / "testbed.json").exists(), "the run took down the testbed it brought up"
        assert [s["trial"] for s in result["scenarios"]] == [1]
        assert all(s["metrics"] is not None for s in result["scenarios"]), "every trial was scored"

    turns = sorted(
        (s["started"], s["ended"], name, s["trial"])
        for name, (_, r) in results.items()
        for s in r["scenarios"]
    )
    assert [(name, trial) for _, _, name, trial in turns] == [("self-managed", 1), ("managed", 1)]
    for (_, ended, *_), (started, *_) in itertools.pairwise(turns):
        assert ended <= started, "trials overlapped"

    labels = " ".join(f"--label {name}={results[name][0]}" for name in SIDES)
    assert f"compare: harness compare {labels}" in output
    batch = batches.pop()
    assert f"comparison: {reports / f'compare-{batch}' / 'compare.html'}" in output
    assert (reports / f"compare-{batch}" / "compare.md").exists(), "the comparison beside the runs"

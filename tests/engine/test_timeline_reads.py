"""A real run reads each scenario's timeline once: no full re-read from scenario start to result.

The engine extends one live Series per running scenario (abort watch, progress line, recovery
watch), reads the last lines once the load has stopped, and scores and draws that Series. Every
read of the file is recorded here: together they must cover the file exactly once.
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from harness.engine import runner
from harness.engine.progress import Progress
from harness.plan import loading
from harness.timeline import loading as timeline_loading
from tests.testbed.conftest import serving, wait_for

pytestmark = pytest.mark.slow
HERE = Path(__file__).parent
ROOT = HERE.parents[1]


def test_a_run_reads_its_timeline_once(managed, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """From the first tick to result.json and report.html, the timeline's bytes are read once each."""
    plan_path = tmp_path / "plan.yaml"
    plan_path.write_text(f"""name: reads
target: {{kind: testbed, profile: managed}}
load: {{locustfile: {ROOT / "loadtests/subscriptions.py"}, users: 6, spawn_rate: 6, pacing_s: 0.5}}
windows: {{warmup_s: 2, baseline_s: 4, observe_s: 20, stability_s: 3}}
abort: [{{metric: error_rate, above: 0.99, for_s: 30}}]
scenarios:
  - {{name: kill, experiment: {HERE / "experiments" / "replica-kill.yaml"}}}
""")
    reads: list[tuple[Path, int, int]] = []
    opened: list[Path] = []
    read = timeline_loading.TimelineFile._read
    path_open = Path.open

    def recording_read(self: timeline_loading.TimelineFile, final: bool) -> bool:
        before = self.offset
        done = read(self, final)
        if done:
            reads.append((self.path, before, self.offset))
        return done

    def counting_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        mode = args[0] if args else kwargs.get("mode", "r")
        if self.name == "timeline.jsonl" and not set(mode) & set("wax+"):
            opened.append(self)
        return path_open(self, *args, **kwargs)

    monkeypatch.setattr(timeline_loading.TimelineFile, "_read", recording_read)
    monkeypatch.setattr(Path, "open", counting_open)
    wait_for(lambda: serving(managed), 60, "a healthy testbed before the scenario")
    engine = runner.Engine(
        loading.load_plan(plan_path), tmp_path / "reports", managed.root, Progress(quiet=True)
    )
    result = engine.run()

    (scenario,) = result.to_json()["scenarios"]
    assert scenario["status"] == "completed" and scenario["metrics"] is not None, scenario
    timeline = engine.run_dir / "scenarios" / "kill-1" / "timeline.jsonl"
    size = timeline.stat().st_size
    ranges = [(a, b) for p, a, b in reads if p == timeline]
    assert len(ranges) > 10, "the live series was extended tick by tick"
    assert ranges[0][0] == 0 and ranges[-1][1] == size
    assert all(a == prev_b for (_, prev_b), (a, _) in pairwise(ranges)), (
        "each read starts where the last ended: no byte is read twice, no full re-read"
    )
    assert scenario["metrics"]["requests"] > 0 and (engine.run_dir / "report.html").exists()
    # Opens: one per read that found new bytes, plus the engine's look at the end line for the
    # workers count (the file's last 4 kB); scoring and the report opened nothing.
    assert len([p for p in opened if p == timeline]) <= len(ranges) + 1

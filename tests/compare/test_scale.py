"""One scale per comparison: every trial of a scenario scored again with the same thresholds.

The run folders are real in what scoring reads: a timeline written as the recorder writes it, the
markers the engine writes, and result.json metrics as `harness score` computes them (each trial on
its own baseline's thresholds). The case: the same fault, 150 ms for 20 s, on a side whose baseline
p95 is 50 ms and on one whose baseline p95 is 100 ms.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from harness.cli import app
from harness.compare import runs, scale
from harness.scoring import HealthPolicy, ScoringSettings, phases_from_markers, score_scenario
from harness.store import rundir
from harness.timeline import load_series
from tests.compare import write_run
from tests.scoring.timelines import T0, scenario, write_lines

FAULT_S = (60, 80)
"""The fault: from 60 s to 80 s after T0, every request 150 ms."""
FAST = {"purchase": {"latency_ms": 50.0}}
"""Baseline p95 50 ms (a third of the requests are purchases, at 50 ms)."""
SLOW = {"purchase": {"latency_ms": 100.0}}
"""Baseline p95 100 ms."""
IMPACTED = 77.9
"""The resilience score of 20 s unhealthy in this scenario (the fast side's own, as recorded)."""


def markers() -> list[dict[str, Any]]:
    """Baseline from 10 s, the fault's action from 60 s to 80 s, stopped at 120 s."""
    return [
        {"t": T0 + 5, "kind": "phase", "phase": "warmup"},
        {"t": T0 + 10, "kind": "phase", "phase": "baseline"},
        {"t": T0 + 60, "kind": "activity_start", "name": "slow", "type": "action", "section": "method"},
        {"t": T0 + 80, "kind": "activity_end", "name": "slow", "type": "action", "section": "method"},
        {"t": T0 + 120, "kind": "phase", "phase": "stopped"},
    ]


def overrides(normal: Mapping[str, Mapping[str, Any]]) -> dict[int, dict[str, dict[str, Any]]]:
    """Every second as `normal`, the fault's seconds at 150 ms for both request names."""
    slow = {"catalog": {"latency_ms": 150.0}, "purchase": {"latency_ms": 150.0}}
    return {s: {**normal, **slow} if FAULT_S[0] <= s < FAULT_S[1] else dict(normal) for s in range(120)}


def write_side(
    path: Path,
    normals: Sequence[Mapping[str, Mapping[str, Any]]],
    slo: Mapping[str, Any] | None = None,
    without_timeline: Sequence[int] = (),
) -> Path:
    """A run of `replica-kill` with a trial per entry of normals, scored as `harness score` scores it."""
    path.mkdir(parents=True)
    recorded = []
    policy = HealthPolicy(**(slo or {}))
    for trial, normal in enumerate(normals, start=1):
        sdir = rundir.scenario_dir(path, "replica-kill", trial)
        sdir.mkdir(parents=True)
        timeline = scenario(sdir / "timeline.jsonl", seconds=120, overrides=overrides(normal))
        write_lines(sdir / "markers.jsonl", markers())
        series = load_series(timeline)
        phases = phases_from_markers(markers())
        metrics = score_scenario(
            series,
            phases,
            ScoringSettings(policy=policy, stability_s=10.0, horizon_s=60.0),  # the plan's observe_s
        )
        recorded.append({**metrics.to_dict(), "data_loss": 0})
        if trial in without_timeline:
            timeline.unlink()
    write_run(path, {"replica-kill": recorded}, run_id=path.name)
    if slo:
        plan = json.loads((path / rundir.PLAN).read_text())
        plan["slo"].update(slo)
        rundir.write_json(path / rundir.PLAN, plan)
    return path


def scores(report: runs.ComparisonReport, metric: str = "resilience_score") -> dict[str, tuple[float, ...]]:
    found = next(m for m in report.scenarios[0].metrics if m.name == metric)
    return {
        label: tuple(v for v in summary.values if math.isfinite(v))  # censored (null) trials are ±inf
        for label, summary in found.summaries.items()
    }


class TestOneScale:
    def test_the_same_fault_scores_the_same_on_both_sides(self, tmp_path: Path) -> None:
        """On the 50 ms side's scale, the 150 ms fault is 20 s of downtime on both sides, same score."""
        fast = write_side(tmp_path / "fast", [FAST, FAST])
        slow = write_side(tmp_path / "slow", [SLOW, SLOW])
        asked = ["resilience_score", "downtime_cost_usd"]  # cost is not compared by default
        report = runs.compare_runs([], {"fast": [fast], "slow": [slow]}, metrics=asked)
        assert scores(report) == {"fast": (IMPACTED, IMPACTED), "slow": (IMPACTED, IMPACTED)}
        assert scores(report, "downtime_cost_usd") == {
            "fast": (222.22, 222.22),
            "slow": (222.22, 222.22),
        }  # 20 s
        used = report.thresholds[0]
        assert used.thresholds is not None and 100.0 < used.thresholds["p95_ms"] < 100.6
        assert used.source == "the pooled baseline of fast (2 trials)"
        assert (used.rescored, used.kept) == (4, 0)

    def test_the_slower_reference_reads_no_impact_on_both_sides(self, tmp_path: Path) -> None:
        """With the 100 ms side first, its scale (about 200 ms) sees no impact anywhere."""
        fast = write_side(tmp_path / "fast", [FAST, FAST])
        slow = write_side(tmp_path / "slow", [SLOW, SLOW])
        report = runs.compare_runs([], {"slow": [slow], "fast": [fast]})
        assert scores(report) == {"slow": (100.0, 100.0), "fast": (100.0, 100.0)}
        assert scores(report, "time_to_impact_s") == {"slow": (), "fast": ()}  # null: no impact

    def test_own_thresholds_keep_the_recorded_numbers(self, tmp_path: Path) -> None:
        """--own-thresholds compares what each trial recorded: the slower baseline looks unharmed."""
        fast = write_side(tmp_path / "fast", [FAST, FAST])
        slow = write_side(tmp_path / "slow", [SLOW, SLOW])
        report = runs.compare_runs([], {"fast": [fast], "slow": [slow]}, own_thresholds=True)
        assert scores(report) == {"fast": (IMPACTED, IMPACTED), "slow": (100.0, 100.0)}
        assert report.thresholds[0].thresholds is None
        assert report.thresholds[0].source == scale.OWN

    def test_the_baselines_of_the_reference_side_are_pooled(self, tmp_path: Path) -> None:
        """A reference side of a fast and a slow trial: the scale comes from both baselines together."""
        mixed = write_side(tmp_path / "mixed", [FAST, SLOW])
        slow = write_side(tmp_path / "slow", [SLOW])
        report = runs.compare_runs([], {"mixed": [mixed], "slow": [slow]})
        p95 = report.thresholds[0].thresholds["p95_ms"]  # type: ignore[index]
        # Pooled: 600 requests at 20 ms, 150 at 50 ms, 150 at 100 ms, so p95 is 100 ms: threshold ~200 ms.
        assert 199.0 < p95 < 201.0

    def test_a_plan_slo_is_the_scale_where_it_is_set(self, tmp_path: Path) -> None:
        """p95_ms set in the plan is used as it is, and the page says it came from the plan."""
        fast = write_side(tmp_path / "fast", [FAST], slo={"p95_ms": 120.0})
        slow = write_side(tmp_path / "slow", [SLOW], slo={"p95_ms": 120.0})
        report = runs.compare_runs([], {"fast": [fast], "slow": [slow]})
        used = report.thresholds[0]
        assert used.thresholds is not None and used.thresholds["p95_ms"] == 120.0
        assert used.source.startswith(
            "the plan's SLO (p95_ms 120), the rest from the pooled baseline of fast"
        )
        both = scores(report)
        assert both["fast"] == both["slow"] != (100.0,)  # the latency penalty is measured against 120 ms


class TestWarnings:
    def test_differing_recorded_thresholds_are_named(self, tmp_path: Path) -> None:
        """Trials that recorded different thresholds: the scenario, the sides and the values."""
        fast = write_side(tmp_path / "fast", [FAST])
        slow = write_side(tmp_path / "slow", [SLOW])
        for own in (False, True):
            report = runs.compare_runs([], {"fast": [fast], "slow": [slow]}, own_thresholds=own)
            differ = [w for w in report.warnings if "recorded different thresholds" in w]
            assert len(differ) == 1, report.warnings
            assert differ[0].startswith(
                "replica-kill: the trials recorded different thresholds (p95_ms: fast 100.3"
            )
            assert "slow 199.97" in differ[0]
            assert ("--own-thresholds" in differ[0]) is own

    def test_equal_recorded_thresholds_are_no_warning(self, tmp_path: Path) -> None:
        """The same baseline on both sides: nothing to warn of, and nothing else either."""
        a = write_side(tmp_path / "a", [FAST])
        b = write_side(tmp_path / "b", [FAST])
        report = runs.compare_runs([], {"a": [a], "b": [b]})
        assert report.warnings == ()

    def test_a_trial_without_its_timeline_keeps_its_recorded_metrics(self, tmp_path: Path) -> None:
        """An old or damaged trial folder: recorded metrics, and a warning naming the trial."""
        fast = write_side(tmp_path / "fast", [FAST])
        slow = write_side(tmp_path / "slow", [SLOW, SLOW], without_timeline=[2])
        report = runs.compare_runs([], {"fast": [fast], "slow": [slow]})
        assert scores(report) == {"fast": (IMPACTED,), "slow": (IMPACTED, 100.0)}
        kept = [w for w in report.warnings if "keep the metrics they recorded" in w]
        assert kept == [
            "replica-kill on slow: 1 trial(s) keep the metrics they recorded, on their own thresholds, "
            "not on the comparison's scale: slow #2 (no timeline.jsonl)"
        ]
        assert (report.thresholds[0].rescored, report.thresholds[0].kept) == (2, 1)

    def test_no_reference_baseline_means_no_common_scale(self, tmp_path: Path) -> None:
        """Without a readable baseline on the first side, every trial keeps its own, and it says why."""
        fast = write_side(tmp_path / "fast", [FAST], without_timeline=[1])
        slow = write_side(tmp_path / "slow", [SLOW])
        report = runs.compare_runs([], {"fast": [fast], "slow": [slow]})
        assert scores(report) == {"fast": (IMPACTED,), "slow": (100.0,)}
        assert any("no common scale" in w and "fast #1 (no timeline.jsonl)" in w for w in report.warnings)


class TestPage:
    def test_the_page_and_the_cli_say_which_thresholds(self, tmp_path: Path) -> None:
        """compare.md lists the scale and its source; --own-thresholds on the command line says so."""
        fast = write_side(tmp_path / "fast", [FAST])
        slow = write_side(tmp_path / "slow", [SLOW])
        cli = CliRunner()
        common = cli.invoke(app, ["compare", str(fast), str(slow), "--out", str(tmp_path / "c1")])
        assert common.exit_code == 0, common.output
        md = (tmp_path / "c1" / "compare.md").read_text()
        assert "**Health thresholds**" in md
        assert "replica-kill: one scale for every side (error_rate 0.01, p95_ms 100.3" in md
        assert "from the pooled baseline of testbed managed fast (1 trial); 2 trials scored on it" in md
        assert 'data-thresholds="replica-kill"' in (tmp_path / "c1" / "compare.html").read_text()
        own = cli.invoke(
            app, ["compare", str(fast), str(slow), "--own-thresholds", "--out", str(tmp_path / "c2")]
        )
        assert own.exit_code == 0, own.output
        md = (tmp_path / "c2" / "compare.md").read_text()
        assert f"replica-kill: thresholds from {scale.OWN}" in md

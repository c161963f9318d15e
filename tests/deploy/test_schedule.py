"""Every shipped CronJob's Job deadline fits the plan it runs.

A Job past its activeDeadlineSeconds is killed: the scenarios not yet run are lost, and in a bad
week (faults that do not heal, every observation window used in full) the results that matter
most are the ones cut off. So the deadline must cover the plan's longest ordinary duration, with
a margin, and a plan edited in the ConfigMap (more trials, longer windows) must come with a
longer deadline: this test fails until it does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.plan import loading
from tests.deploy.kustomize import pod_spec
from tests.deploy.rendering import render
from tests.deploy.test_manifests import DEPLOY, OVERLAYS, ROOT, run_params

TRIAL_OVERHEAD_S = 60.0
"""Per trial, around the windows: Locust's start and stop, the steady-state probes before and
after, the check of acknowledged writes (at most 30 s), heal() and the copy of the events."""
UNDO_S = 60.0
"""Per trial: the undo and the wait for a whole Deployment again (a replacement scheduled,
started from a cached image, Ready after its probes)."""
MARGIN = 0.25
"""The deadline is at least a quarter above the expected duration..."""
MIN_MARGIN_S = 15 * 60.0
"""...and at least a quarter of an hour above it."""


def hold_s(scenario: Any) -> float:
    """How long the experiment holds its fault: its `duration_s` (the scenario's vars first,
    then the experiment's own default); 0 for a fault with no duration (a pod kill)."""
    if "duration_s" in scenario.vars:
        return float(scenario.vars["duration_s"])
    configuration = yaml.safe_load(Path(scenario.experiment).read_text()).get("configuration") or {}
    value = configuration.get("duration_s", 0)
    return float(value) if isinstance(value, int | float) else 0.0


def expected_duration_s(plan: Any) -> float:
    """The plan's duration with every observation window used in full: per scenario and trial,
    warm-up + baseline + the fault's hold + the undo + observe_s + the overhead."""
    w = plan.windows
    return sum(
        scenario.trials
        * (w.warmup_s + w.baseline_s + hold_s(scenario) + UNDO_S + w.observe_s + TRIAL_OVERHEAD_S)
        for scenario in plan.scenarios
    )


def pairs() -> list[tuple[str, str, str]]:
    """(overlay, CronJob, plan file) for every CronJob the overlays ship."""
    found = []
    for overlay in OVERLAYS:
        for obj in render(DEPLOY / overlay):
            if obj["kind"] == "CronJob":
                found.append((overlay, obj["metadata"]["name"], Path(run_params(obj)["plan"]).name))
    return found


PAIRS = pairs()


def test_every_overlay_ships_its_cronjobs() -> None:
    """The comparison in both overlays, the AWS game day in the EKS one."""
    assert sorted(PAIRS) == [
        ("overlays/eks", "harness-gameday", "cluster-benchmark.yaml"),
        ("overlays/eks", "harness-gameday-aws", "eks-gameday.yaml"),
        ("overlays/self-managed", "harness-gameday", "cluster-benchmark.yaml"),
    ]


@pytest.mark.parametrize(("overlay", "name", "plan_file"), PAIRS, ids=lambda v: str(v))
def test_deadline_fits_the_plan(overlay: str, name: str, plan_file: str) -> None:
    """activeDeadlineSeconds >= the plan's expected duration + max(25 %, 15 min)."""
    cronjob = next(
        o for o in render(DEPLOY / overlay) if o["kind"] == "CronJob" and o["metadata"]["name"] == name
    )
    plan = loading.load_plan(ROOT / "experiments" / "plans" / plan_file)
    expected = expected_duration_s(plan)
    deadline = cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    needed = expected + max(MARGIN * expected, MIN_MARGIN_S)
    runs = sum(s.trials for s in plan.scenarios)
    assert deadline >= needed, (
        f"{overlay} CronJob {name}: activeDeadlineSeconds {deadline} < {needed:.0f} "
        f"({plan.name}: {runs} scenario runs, {expected / 3600:.2f} h expected, plus the margin)"
    )
    # Not so long that it stops bounding anything: a stuck run still ends within a day.
    assert deadline <= max(2 * needed, 6 * 3600), f"{name}: {deadline} s bounds little"
    assert pod_spec(cronjob)["terminationGracePeriodSeconds"] < deadline


def test_the_weekly_comparison_and_the_aws_game_day_never_overlap() -> None:
    """On EKS the two CronJobs start on different days, each done (deadline) within its day."""
    objects = render(DEPLOY / "overlays/eks")
    days = {}
    for cronjob in (o for o in objects if o["kind"] == "CronJob"):
        minute, hour, _, _, weekday = cronjob["spec"]["schedule"].split()
        start_s = int(hour) * 3600 + int(minute) * 60 + cronjob["spec"]["startingDeadlineSeconds"]
        end_s = start_s + cronjob["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
        assert end_s <= 24 * 3600, cronjob["metadata"]["name"]
        days[cronjob["metadata"]["name"]] = weekday
    assert len(set(days.values())) == len(days), days


def test_expected_duration_counts_windows_holds_and_trials() -> None:
    """The estimate grows with trials and windows, and reads each fault's hold."""
    plan = loading.load_plan(ROOT / "experiments" / "plans" / "cluster-benchmark.yaml")
    base = expected_duration_s(plan)
    assert expected_duration_s(plan.with_trials(10)) == pytest.approx(2 * base)
    longer = plan.model_copy(update={"windows": plan.windows.model_copy(update={"observe_s": 280})})
    runs = sum(s.trials for s in plan.scenarios)
    assert expected_duration_s(longer) == pytest.approx(base + 100 * runs)
    holds = {s.name: hold_s(s) for s in plan.scenarios}
    assert holds["pod-kill"] == 0 and holds["deployment-scale-down"] == 120

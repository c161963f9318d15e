"""A plan's `target.settings`: what it changes of its testbed profile, and a running testbed that differs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness.engine import targets
from harness.errors import InputError
from harness.plan import loading
from harness.testbed import profiles

ROOT = Path(__file__).resolve().parents[2]


def plan_with(tmp_path: Path, settings: dict) -> Path:
    plan = yaml.safe_load((ROOT / "experiments/plans/local-quick.yaml").read_text())
    plan["target"] = {"kind": "testbed", "profile": "managed", "settings": settings}
    for scenario in plan["scenarios"]:
        scenario["experiment"] = str(ROOT / scenario["experiment"])
    plan["load"]["locustfile"] = str(ROOT / plan["load"]["locustfile"])
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False))
    return path


def test_settings_reach_the_testbed_the_run_starts(tmp_path: Path) -> None:
    """Health checks on and a 10 s eviction: the profile the engine starts has them, the rest of the
    profile stays the bundled one."""
    plan = loading.load_plan(plan_with(tmp_path, {"lb_health_checks": True, "eviction_s": 10}))
    target = targets.make_target(plan.target, tmp_path / "testbed")
    assert isinstance(target, targets.TestbedTarget)
    assert target.profile.lb_health_checks is True
    assert target.profile.timings.eviction_s == 10
    assert target.profile.timings.node_grace_s == profiles.Timings().node_grace_s
    assert target.profile.etcd_zones == profiles.builtin("managed").etcd_zones


def test_an_unknown_or_invalid_setting_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"eviction_seconds"):
        loading.load_plan(plan_with(tmp_path, {"eviction_seconds": 10}))
    with pytest.raises(InputError, match=r"node_grace_s"):
        loading.load_plan(plan_with(tmp_path, {"node_grace_s": 0}))


def test_a_running_testbed_with_other_values_is_named_field_by_field() -> None:
    """Reusing a running testbed whose settings differ would measure another system than the plan asks."""
    running = profiles.builtin("managed", timings={"eviction_s": 30})
    wanted = {"lb_health_checks": True, "timings": {"eviction_s": 10.0, "node_grace_s": 4.0}}
    assert targets._differences(wanted, running) == ["lb_health_checks=True", "eviction_s=10.0"]
    assert targets._differences({}, running) == []

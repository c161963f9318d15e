"""Closing the loop: a finding's recommended change, applied, moves its metric as predicted.

Each test runs a scenario on a real testbed of its own (started by the engine with the plan's
`target.settings`, stopped after), checks that the finding fires and reads its expected effect,
runs the same scenario again with the change the finding recommends, and asserts that the
metric moved in the predicted direction by at least half the predicted amount. The predicted
amount and the recommended value come from the finding, never from the test.

Minutes of real load: not in the default run. `pytest --run-loop tests/findings/test_loop.py`
(or HARNESS_LOOP_TESTS=1); docs/findings.md has the measured numbers.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from harness.engine import runner
from harness.engine.progress import Progress
from harness.plan import loading

pytestmark = [pytest.mark.loop, pytest.mark.slow, pytest.mark.timeout(600)]
ROOT = Path(__file__).resolve().parents[2]
NODE_CRASH = ROOT / "experiments" / "local" / "node-crash.yaml"
"""The bundled game day's node crash: node-b1 down for 40 s, past the 30 s eviction."""
ZONE_PARTITION = Path(__file__).parent / "experiments" / "zone-partition-short.yaml"


def yaml_map(values: dict[str, Any]) -> str:
    return (
        "{"
        + ", ".join(f"{k}: {str(v).lower() if isinstance(v, bool) else v}" for k, v in values.items())
        + "}"
    )


def run(
    tmp: Path, label: str, experiment: Path, settings: dict[str, Any] | None = None, timeout_s: float = 5.0
) -> dict[str, Any]:
    """One scenario of the game day's load (20 users paced at 1 s, 1 s buckets, 1 s p95 SLO) on a
    fresh managed testbed with `settings`; its result entry, with the run's target facts."""
    plan_path = tmp / f"{label}.yaml"
    settings_yaml = f", settings: {yaml_map(settings)}" if settings else ""
    plan_path.write_text(f"""name: loop-{label}
target: {{kind: testbed, profile: managed{settings_yaml}}}
load: {{locustfile: {ROOT / "loadtests/subscriptions.py"}, host: auto, users: 20, spawn_rate: 10, pacing_s: 1.0, bucket_s: 1.0, request_timeout_s: {timeout_s}}}
windows: {{warmup_s: 3, baseline_s: 10, observe_s: 50, stability_s: 5}}
slo: {{p95_ms: 1000}}
baseline: {{require_steady: false}}
scenarios:
  - {{name: {label}, experiment: {experiment}}}
""")
    # A short folder of its own: HAProxy's stats socket path may not exceed 97 characters.
    testbed = Path(tempfile.mkdtemp(prefix="loop-", dir="/tmp"))
    try:
        engine = runner.Engine(loading.load_plan(plan_path), tmp / "reports", testbed, Progress(quiet=True))
        result = engine.run().to_json()
    finally:
        shutil.rmtree(testbed, ignore_errors=True)
    (scenario,) = result["scenarios"]
    assert scenario["status"] == "completed", scenario
    phases = ", ".join(
        f"{p['name']} {p['at_s']}" for p in scenario["recovery_phases"] if p["at_s"] is not None
    )
    print(f"{label}: recovery_time_s {scenario['metrics']['recovery_time_s']}; {phases}; {engine.run_dir}")
    return {**scenario, "target": result["target"]}


def finding(scenario: dict[str, Any], rule: str) -> dict[str, Any]:
    found = {f["id"]: f for f in scenario.get("findings", [])}
    assert rule in found, f"{rule} did not fire; fired: {sorted(found)}"
    assert found[rule].get("expected_effect"), f"{rule} has no expected effect"
    return found[rule]


def measure(scenario: dict[str, Any], metric: str) -> float:
    """A registry metric, or a recovery phase's `recovery_phases.NAME.at_s`."""
    if metric.startswith("recovery_phases."):
        _, name, field = metric.split(".")
        value = next(p for p in scenario["recovery_phases"] if p["name"] == name)[field]
    else:
        value = scenario["metrics"][metric]
    assert value is not None, f"{metric} was not measured"
    return float(value)


def check_moved(label: str, before: dict[str, Any], after: dict[str, Any], effect: dict[str, Any]) -> None:
    """The metric moved in the predicted direction by at least half the predicted amount."""
    metric, predicted = effect["metric"], effect["change"]
    was, now = measure(before, metric), measure(after, metric)
    moved = now - was
    print(f"LOOP {label}: {metric} {was:.2f} -> {now:.2f} (moved {moved:+.2f}, predicted {predicted:+.2f})")
    assert predicted != 0
    assert moved * (1 if predicted > 0 else -1) >= abs(predicted) / 2, (metric, was, now, predicted)


@pytest.fixture(scope="module")
def node_crash_before(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The game day's node crash on the managed profile as it is (grace 4 s, eviction 30 s): the
    'before' of both node-crash findings."""
    return run(tmp_path_factory.mktemp("loop"), "node-crash-before", NODE_CRASH)


def test_halving_the_node_grace_period_shortens_recovery(node_crash_before, tmp_path: Path) -> None:
    """detection-dominates-recovery: detection took the node grace period; halved, recovery is
    shorter by about half the grace period."""
    found = finding(node_crash_before, "detection-dominates-recovery")
    effect = found["expected_effect"]
    assert effect["metric"] == "recovery_time_s" and "halved" in effect["text"]
    grace = node_crash_before["target"]["node_grace_s"]
    after = run(tmp_path, "node-crash-grace", NODE_CRASH, {"node_grace_s": grace / 2})
    assert after["target"]["node_grace_s"] == grace / 2
    check_moved("detection-dominates-recovery", node_crash_before, after, effect)


def test_a_shorter_eviction_toleration_restores_capacity_sooner(node_crash_before, tmp_path: Path) -> None:
    """capacity-reduced-until-eviction: capacity came back only at eviction; with the toleration
    the finding suggests, it comes back sooner by about the difference."""
    found = finding(node_crash_before, "capacity-reduced-until-eviction")
    effect = found["expected_effect"]
    suggested = float(re.search(r"with a ([\d.]+) s toleration", effect["text"]).group(1))
    assert suggested < node_crash_before["target"]["eviction_s"]
    after = run(tmp_path, "node-crash-eviction", NODE_CRASH, {"eviction_s": suggested})
    check_moved("capacity-reduced-until-eviction", node_crash_before, after, effect)


def test_a_shorter_request_timeout_shortens_recovery_from_a_zone_partition(tmp_path: Path) -> None:
    """client-timeouts-dominate-recovery: users waited out the 5 s request timeout after the
    rerouting; with the timeout the finding suggests (the load script retries purchases on a
    timeout), they are back sooner."""
    before = run(tmp_path, "zone-partition-before", ZONE_PARTITION)
    found = finding(before, "client-timeouts-dominate-recovery")
    effect = found["expected_effect"]
    suggested = float(re.search(r"to ([\d.]+) s$", effect["text"]).group(1))
    assert f"({suggested:g} s:" in found["recommendation"]
    after = run(tmp_path, "zone-partition-timeout", ZONE_PARTITION, timeout_s=suggested)
    check_moved("client-timeouts-dominate-recovery", before, after, effect)

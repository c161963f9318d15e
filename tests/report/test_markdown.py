"""summary.md as it lands in a pull-request comment: verdict, a row per scenario, failed and
skipped gates with their reasons, and links to the full report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report import markdown
from tests.report.conftest import Spec, build_run


@pytest.fixture
def result(tmp_path: Path) -> dict:
    _, result = build_run(tmp_path, [Spec("kill", broken_s=(61, 64)), Spec("crash", broken_s=(61, 95))])
    return result


def test_verdict_rows_and_failed_gates(result: dict) -> None:
    text = markdown.summary(result, report_url="")
    assert text.startswith(f"# Resilience run `{result['run_id']}`: FAILED")
    rows = [line for line in text.splitlines() if line.startswith("| kill#1") or line.startswith("| crash#1")]
    assert len(rows) == 2
    crash = next(s for s in result["scenarios"] if s["name"] == "crash")
    failed = [g for g in crash["gates"] if not g["passed"]]
    assert failed, "the long outage must break a gate"
    why = text.split("## Why it failed", 1)[1]
    assert "**crash#1**" in why
    for gate in failed:
        assert f"gate `{gate['expression']}`: value" in why


def test_links_are_relative_or_under_the_published_url(result: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(markdown.REPORT_URL_ENV, raising=False)
    assert "[report.html](report.html)" in markdown.summary(result)
    monkeypatch.setenv(markdown.REPORT_URL_ENV, "https://ci.example/artifacts/run-7/")
    assert "[report.html](https://ci.example/artifacts/run-7/report.html)" in markdown.summary(result)


def test_skipped_history_gates_are_listed_with_their_reason(result: dict) -> None:
    result["scenarios"][0]["gates"].append({
        "expression": "recovery_time_s <= 1.2 * median_last(5)", "value": 3.0, "passed": True,
        "skipped": True, "reason": "no earlier runs of this plan on this target",
    })  # fmt: skip
    text = markdown.summary(result)
    assert "Skipped gates" in text and "no earlier runs of this plan on this target" in text


def test_junit_shows_a_skipped_gate_as_skipped_not_passed(result: dict) -> None:
    from xml.etree import ElementTree as ET

    from harness.report import junit

    result["scenarios"][0]["gates"].append({
        "expression": "recovery_time_s <= 1.2 * median_last(5)", "value": 3.0, "passed": True,
        "skipped": True, "reason": "no earlier runs of this plan on this target",
    })  # fmt: skip
    root = ET.fromstring(junit.render(result))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("skipped") == "1"
    case = next(c for c in suite.iter("testcase") if c.get("name", "").startswith("recovery_time_s <="))
    skip = case.find("skipped")
    assert skip is not None and "no earlier runs" in skip.get("message", "")
    assert case.find("failure") is None


def test_baseline_false_alarms_are_named_with_what_they_mean(result: dict) -> None:
    """A scenario whose baseline had buckets judged unhealthy is named, with the noise it means."""
    result["scenarios"][0]["metrics"]["false_alarm_rate"] = 0.05
    result["scenarios"][1]["metrics"]["false_alarm_rate"] = 0.0
    line = next(x for x in markdown.summary(result).splitlines() if x.startswith("Baseline false alarms"))
    assert "kill#1 5.0 %" in line and "crash#1" not in line and "carry that much noise" in line


def test_a_quiet_baseline_says_so_and_an_old_result_says_nothing(result: dict) -> None:
    """No false alarm anywhere: one sentence saying so; results scored before the rate existed: none."""
    for s in result["scenarios"]:
        s["metrics"]["false_alarm_rate"] = 0.0
    assert "No baseline false alarms" in markdown.summary(result)
    for s in result["scenarios"]:
        del s["metrics"]["false_alarm_rate"]
    assert "false alarms" not in markdown.summary(result)


def test_the_control_plane_line_gives_a_restores_rto_and_rpo(result: dict) -> None:
    """A restore drill's RTO and RPO, and how long writes were refused, are in the summary; a
    scenario whose control plane went through nothing gets no line."""
    result["scenarios"][0]["metrics"]["control_plane"] = {
        "api": {
            "baseline": {"samples": 0, "throttled_own_load": 0},
            "fault": {"samples": 0, "throttled_own_load": 0},
        },
        "write_unavailable_s": 10.6,
        "repair_blocked_s": 0.0,
        "leader_changes": 2,
        "restore": {
            "rto_s": 10.8,
            "rpo_writes": 40,
            "rpo_revisions": 160,
            "rpo_age_s": 19.9,
            "snapshot_interval_s": 30.0,
        },
    }
    result["scenarios"][1]["metrics"]["control_plane"] = {
        "api": {
            "baseline": {"samples": 0, "throttled_own_load": 0},
            "fault": {"samples": 0, "throttled_own_load": 0},
        },
        "write_unavailable_s": 0.0,
        "repair_blocked_s": 0.0,
        "leader_changes": 0,
    }
    lines = markdown.summary(result).splitlines()
    cp = [x for x in lines if x.startswith("- ") and ("RTO" in x or "writes refused" in x)]
    assert cp == [
        "- kill#1: writes refused for 10.6 s; 2 leader changes; restored from a snapshot: RTO 10.8 s, "
        "RPO 19.9 s of writes (160 revisions, 40 of the harness's acknowledged probe writes) with "
        "snapshots every 30 s"
    ]


GAMEDAY = Path(__file__).parents[1] / "fixtures/runs/20261202T174601Z-local-gameday-8afa/result.json"


def test_one_recovery_phase_line_per_scenario_in_time_order() -> None:
    """Each scenario's phases after the fault, in time order, with the platform's evidence; the
    phases not seen are named."""
    lines = markdown.summary(json.loads(GAMEDAY.read_text())).splitlines()
    crash = next(x for x in lines if x.startswith("- node-crash#1: "))
    assert crash == (
        "- node-crash#1: users affected +0.0 s, detected +3.8 s (node_not_ready node-b1), rerouted +3.8 s "
        "(endpoint_removed subs-91cbc8), users back +7.4 s, steady +17.4 s, capacity restored +35.8 s "
        "(endpoint_added subs-d7c7f5 on node-a1)"
    )
    latency = next(x for x in lines if x.startswith("- zone-latency#1: "))
    assert latency.endswith("; not seen: detected, rerouted, capacity restored")


def test_faults_without_evidence_are_named_and_others_are_not() -> None:
    """A fault no evidence shows is named with its activity and why; faults that took effect are not."""
    result = json.loads(GAMEDAY.read_text())
    assert "Faults without evidence" not in markdown.summary(result)
    result["scenarios"][2]["fault_effect"] = {
        "outcome": "no-effect-observed",
        "activities": [{"name": "slow-down-a-zone", "observed": False, "source": "ground-truth",
                        "evidence": "no fault or effect event in the ground truth, no user impact"}],
    }  # fmt: skip
    line = next(x for x in markdown.summary(result).splitlines() if x.startswith("- zone-latency#1: **"))
    assert line == (
        "- zone-latency#1: **no effect observed** (slow-down-a-zone: no fault or effect event in the "
        "ground truth, no user impact)"
    )

"""A scenario that did not apply on one side (a control-plane stop on EKS): that side has no trials
and no verdict for it, and the page says why, rather than counting it missing or unscored."""

from __future__ import annotations

import json
from pathlib import Path

from harness.compare import render, runs
from tests.compare import metrics, write_run

REASON = "managed control plane: eks runs etcd and the API servers out of reach, and the scenario requires self-managed-control-plane"
SELF_MANAGED = {"kind": "kubernetes", "context": "in-cluster", "provider": "self-managed"}
EKS = {"kind": "kubernetes", "context": "in-cluster", "provider": "eks"}


def mark_not_applicable(run_dir: Path, scenario: str) -> Path:
    """The run's entries for `scenario` replaced by the one entry the engine writes when it skips it."""
    path = run_dir / "result.json"
    data = json.loads(path.read_text())
    kept = [e for e in data["scenarios"] if e["name"] != scenario]
    kept.append(
        {"name": scenario, "experiment": f"experiments/kubernetes/{scenario}.yaml", "trial": 1,
         "status": "not-applicable", "not_applicable": REASON, "started": 1.0, "ended": 1.0,
         "healed": [], "paths": {}, "metrics": None, "gates": [], "passed": True}
    )  # fmt: skip
    data["scenarios"] = kept
    path.write_text(json.dumps(data))
    return run_dir


def runs_of(tmp_path: Path, eks_trials: int = 5) -> tuple[Path, Path]:
    trials = {"pod-kill": [metrics(recovery_time_s=30.0 + i) for i in range(5)],
              "etcd-member-stop": [metrics(recovery_time_s=8.0 + i) for i in range(5)]}  # fmt: skip
    sm = write_run(tmp_path / "sm", trials, target=SELF_MANAGED, plan_name="cluster-benchmark")
    eks_run = {**trials, "pod-kill": [metrics(recovery_time_s=5.0 + i) for i in range(eks_trials)]}
    eks = write_run(tmp_path / "eks", eks_run, target=EKS, plan_name="cluster-benchmark")
    return sm, mark_not_applicable(eks, "etcd-member-stop")


class TestOneSideNotApplicable:
    def test_no_verdict_and_the_reason_for_that_side(self, tmp_path: Path) -> None:
        """The scenario is listed with the reason for the EKS side, with no metrics compared; the
        scenarios both sides ran are compared as before."""
        sm, eks = runs_of(tmp_path)
        report = runs.compare_runs([], {"self-managed": [sm], "eks": [eks]})
        etcd = next(s for s in report.scenarios if s.name == "etcd-member-stop")
        assert etcd.not_applicable == {"eks": REASON}
        assert etcd.labels == ("self-managed",) and etcd.metrics == ()
        assert etcd.trials == {"self-managed": 5}
        pod_kill = next(s for s in report.scenarios if s.name == "pod-kill")
        assert pod_kill.not_applicable == {} and pod_kill.labels == ("self-managed", "eks")
        recovery = next(m for m in pod_kill.metrics if m.name == "recovery_time_s")
        assert recovery.comparisons["eks"].diff == -25.0  # compared as usual (one run a side: no verdict)

    def test_not_missing_data_nor_an_error(self, tmp_path: Path) -> None:
        """No warning calls the skipped scenario unscored, missing or incomplete, and alpha is
        shared only over the comparisons made (one: pod-kill)."""
        sm, eks = runs_of(tmp_path)
        report = runs.compare_runs([], {"self-managed": [sm], "eks": [eks]})
        assert not [w for w in report.warnings if "etcd-member-stop" in w], report.warnings
        assert report.comparisons == 1

    def test_markdown_and_html_say_not_applicable(self, tmp_path: Path) -> None:
        """compare.md and compare.html say, on the EKS side, not applicable with the reason and no verdict."""
        sm, eks = runs_of(tmp_path)
        report = runs.compare_runs([], {"self-managed": [sm], "eks": [eks]})
        md = render.render_markdown(report)
        section = md.split("## etcd-member-stop", 1)[1].split("## ", 1)[0]
        assert f"- **eks**: not applicable ({REASON}); not run there, so no verdict" in section
        assert "| metric |" not in section
        html = render.render_html(report)
        assert 'data-not-applicable="1"' in html
        assert f"not applicable ({REASON}); not run there, so no verdict" in html

    def test_baseline_not_applicable_compares_nothing_for_it(self, tmp_path: Path) -> None:
        """With EKS as the baseline, no side is compared for the scenario; the reason is given."""
        sm, eks = runs_of(tmp_path)
        report = runs.compare_runs([], {"eks": [eks], "self-managed": [sm]})
        etcd = next(s for s in report.scenarios if s.name == "etcd-member-stop")
        assert etcd.labels == () and etcd.metrics == () and etcd.not_applicable == {"eks": REASON}
        assert "- **eks**: not applicable" in render.render_markdown(report)

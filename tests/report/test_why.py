"""Why a trial did not pass: every failed trial names its reason, in summary.md and on the console."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.report import markdown, why
from harness.result import files as result_files
from harness.result import model as result_model
from harness.store import runview

FIXTURE = Path(__file__).parents[1] / "fixtures" / "runs" / "20261202T174601Z-local-gameday-8afa"


def scenario(**fields) -> result_model.Scenario:
    """A scored trial that did not pass; `fields` say how it went."""
    base = {"name": "etcd-leader-kill", "trial": 1, "status": "completed", "passed": False, "metrics": {}}
    return result_model.Scenario.model_validate(base | fields)


def journal(after_probes: list[dict], actions: list[dict] | None = None) -> dict:
    """A Chaos Toolkit journal (chaoslib's shape) with these steady-state-after probe runs."""
    return {
        "status": "completed",
        "deviated": True,
        "run": actions or [],
        "rollbacks": [],
        "steady_states": {
            "before": {"steady_state_met": True, "probes": []},
            "after": {"steady_state_met": False, "probes": after_probes},
        },
    }


def probe_run(name: str, output, tolerance, met: bool) -> dict:
    return {
        "activity": {"type": "probe", "name": name, "tolerance": tolerance, "provider": {"type": "python"}},
        "status": "succeeded",
        "output": output,
        "tolerance_met": met,
    }


class TestReasons:
    def test_a_failed_gate_names_its_value_threshold_and_reason(self) -> None:
        """The value, the right side of the expression and the gate's own reason."""
        s = scenario(
            gates=[
                {"expression": "error_rate < 0.01", "value": 0.0123, "passed": False},
                {
                    "expression": "recovery_time_s < 30",
                    "value": None,
                    "passed": False,
                    "reason": "it did not recover",
                },
                {"expression": "data_loss == 0", "value": 0, "passed": True},
            ]
        )
        assert why.reasons(s) == [
            "gate `error_rate < 0.01`: value 0.0123, threshold 0.01",
            "gate `recovery_time_s < 30`: value null, threshold 30 (it did not recover)",
        ]

    def test_a_deviated_steady_state_names_the_probe_and_what_it_returned(self) -> None:
        """Only the probe that missed its tolerance, with its output and the tolerance."""
        s = scenario(deviated=True, steady_state={"before": True, "after": False})
        j = runview.journal_values(
            journal([
                probe_run("every-replica-is-an-endpoint", 3, 3, True),
                probe_run("etcd-has-quorum", False, True, False),
            ])
        )  # fmt: skip
        assert why.reasons(s, j) == [
            "steady state deviated after the method (checked before the rollbacks): probe `etcd-has-quorum` returned false (tolerance true)"
        ]

    def test_a_probe_that_raised_shows_its_exception(self) -> None:
        """An exception says more than a missing output."""
        run = probe_run("service-answers", None, True, False) | {
            "status": "failed",
            "exception": ["Traceback ...\n", "ConnectError: connection refused\n"],
        }
        j = runview.journal_values(journal([run]))
        s = scenario(deviated=True, steady_state={"before": True, "after": False})
        assert why.reasons(s, j) == [
            "steady state deviated after the method (checked before the rollbacks): probe `service-answers` raised ConnectError: connection refused"
        ]

    def test_without_a_journal_the_deviation_is_still_named(self) -> None:
        """The result alone says which steady state did not hold."""
        s = scenario(deviated=True, steady_state={"before": False, "after": None})
        [reason] = why.reasons(s)
        assert reason.startswith("steady state deviated before the fault")

    def test_errors_aborts_and_failed_actions(self) -> None:
        """The status, the abort, the error and the action that failed are each named."""
        s = scenario(status="aborted", aborted_by="error_rate above 0.5 for 20 s", error=None)
        action = {
            "activity": {"type": "action", "name": "crash-a-node", "provider": {}},
            "status": "failed",
            "exception": ["ActivityFailed: no such node\n"],
        }
        j = runview.journal_values(journal([], actions=[action]) | {"deviated": False})
        assert why.reasons(s, j) == [
            "status aborted: the experiment was aborted",
            "aborted: error_rate above 0.5 for 20 s",
            "action `crash-a-node` failed: ActivityFailed: no such node",
        ]
        assert why.reasons(scenario(status="error", error="Locust exited early (code 1)")) == [
            "status error: the scenario could not run",
            "error: Locust exited early (code 1)",
        ]

    def test_a_trial_that_did_not_pass_always_has_a_reason(self) -> None:
        """Even when nothing recorded explains it, the trial is not left without words."""
        [reason] = why.reasons(scenario())
        assert "did not pass" in reason

    def test_a_scoring_error_is_named(self) -> None:
        s = scenario(metrics=None, scoring_error="markers have no method activity")
        assert why.reasons(s) == ["not scored: markers have no method activity"]


class TestOnARecordedRun:
    @pytest.fixture
    def failed_run(self, tmp_path: Path) -> tuple[Path, result_model.Result]:
        """The recorded game day, with its etcd-leader-kill trial deviated as a one-member etcd makes it."""
        run_dir = tmp_path / FIXTURE.name
        sdir = run_dir / "scenarios" / "etcd-leader-kill-1"
        sdir.mkdir(parents=True)
        data = json.loads((FIXTURE / "scenarios" / "etcd-leader-kill-1" / "journal.json").read_text())
        data["deviated"] = True
        for run in data["steady_states"]["after"]["probes"]:
            if run["activity"]["name"] == "etcd-has-quorum":
                run["output"], run["tolerance_met"] = False, False
        (sdir / "journal.json").write_text(json.dumps(data))
        result = result_files.read(FIXTURE / "result.json")
        scenarios = [
            s.model_copy(
                update={
                    "passed": False,
                    "deviated": True,
                    "steady_state": result_model.SteadyState(before=True, after=False),
                }
            )
            if s.name == "etcd-leader-kill"
            else s
            for s in result.scenarios
        ]
        return run_dir, result.model_copy(update={"scenarios": scenarios, "passed": False})

    def test_summary_has_a_why_section_naming_the_probe(self, failed_run) -> None:
        """summary.md says which trial failed and which probe returned what."""
        run_dir, result = failed_run
        text = markdown.summary(result, journals=runview.failed_journals(run_dir, result))
        section = text.split("## Why it failed", 1)[1]
        assert "**etcd-leader-kill#1**" in section
        assert "probe `etcd-has-quorum` returned false (tolerance true)" in section
        assert "replica-kill" not in section  # it passed

    def test_console_lines_name_the_trial_on_every_line(self, failed_run) -> None:
        """`harness gate` prints one line per reason, each starting with the trial it is about."""
        run_dir, result = failed_run
        lines = why.console_lines(why.failures(result, runview.failed_journals(run_dir, result)))
        assert lines == [
            "FAILED etcd-leader-kill#1: steady state deviated after the method (checked before the rollbacks): "
            "probe `etcd-has-quorum` returned false (tolerance true)"
        ]

    def test_a_run_that_passed_has_no_why_section(self) -> None:
        result = result_files.read(FIXTURE / "result.json")
        assert result.passed
        assert "Why it failed" not in markdown.summary(result)
        assert why.failures(result) == []

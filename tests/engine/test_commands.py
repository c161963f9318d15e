"""The engine's commands report through an `Output`: what they print, and the exit codes they return.

No testbed is started here: these are the commands' checks before anything runs, and clean-up
of a folder with nothing to undo. Real runs are in the other engine tests and tests/cli.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.engine import cleanup, commands, prepare
from harness.errors import InputError
from harness.plan import load_plan

ROOT = Path(__file__).parents[2]
PLAN = ROOT / "experiments" / "plans" / "local-quick.yaml"
EXPERIMENT = ROOT / "experiments" / "local" / "replica-kill.yaml"


class Recorder:
    """commands.Output that keeps every line, by stream."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def print(self, text: str, *, highlight: bool = True, end: str = "\n") -> None:
        self.lines.append(("out", text))

    def note(self, text: str) -> None:
        self.lines.append(("note", text))

    def warning(self, message: object) -> None:
        self.lines.append(("warning", str(message)))

    def error(self, message: object) -> None:
        self.lines.append(("error", str(message)))


def test_validate_names_each_file_and_what_it_is() -> None:
    """A plan and an experiment are each reported valid, in the order given, exit 0."""
    output = Recorder()
    assert commands.validate([PLAN, EXPERIMENT], output) == 0
    assert ("out", f"{PLAN}: valid plan") in output.lines
    assert ("out", f"{EXPERIMENT}: valid experiment") in output.lines


def test_validate_raises_on_a_file_that_is_neither(tmp_path: Path) -> None:
    """A file that is no plan and no experiment is an InputError naming it (the CLI exits 2)."""
    path = tmp_path / "notes.yaml"
    path.write_text("just: notes\n")
    with pytest.raises(InputError) as caught:
        commands.validate([path], Recorder())
    assert str(path) in str(caught.value) and caught.value.exit_code == 2


def test_clean_up_with_nothing_applied_says_so(tmp_path: Path) -> None:
    """A testbed folder with no fault left: nothing to undo, exit 0."""
    output = Recorder()
    assert commands.clean_up(tmp_path / "testbed", None, None, output) == 0
    assert output.lines == [("out", "cleanup: nothing to undo")]


@pytest.mark.parametrize(
    ("line", "failed"),
    [
        ("could not check etcd-a: connection refused", True),
        ("s1: rollback 'restore-node' failed: timed out", True),
        ("s1: rollback 'restore-node' succeeded", False),
        ("undid partition of zone-a", False),
    ],
)
def test_failed_steps_are_the_ones_that_may_leave_a_fault(line: str, failed: bool) -> None:
    """A step that could not check, or a rollback that failed, counts as failed (exit 3)."""
    assert cleanup.failed_steps([line]) == ([line] if failed else [])


def test_a_cluster_name_on_a_testbed_plan_is_refused() -> None:
    """--cluster on a testbed plan is an InputError naming the flag."""
    with pytest.raises(InputError, match="--cluster 'eks'"):
        prepare.with_cluster(load_plan(PLAN), "eks")


def test_a_dry_run_exits_2_only_when_refused() -> None:
    """The dry run's exit code: 2 when an experiment would leave the plan's context, else 0."""
    assert prepare.DryRun("table", []).exit_code == 0
    assert prepare.DryRun("table", ["leaves the context"]).exit_code == 2


def test_gate_output_names_why_each_failed_trial_failed(tmp_path: Path) -> None:
    """`harness gate`'s lines for a run folder: one per reason, each naming the trial and the gate."""
    from harness.result import files as result_files

    fixture = ROOT / "tests" / "fixtures" / "runs" / "20261202T174501Z-release-gate-8bf8"
    result = result_files.read(fixture / "result.json")
    [trial] = result.scenarios
    gate = trial.gates[0].model_copy(update={"passed": False})
    failed = trial.model_copy(update={"passed": False, "gates": [gate, *trial.gates[1:]]})
    result = result.model_copy(update={"scenarios": [failed], "passed": False})
    assert commands.why_lines(tmp_path, result) == [
        f"FAILED zone-latency-light#1: gate `{gate.expression}`: value {gate.value}, threshold 300"
    ]

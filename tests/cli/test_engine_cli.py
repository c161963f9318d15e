"""`harness run`, `gate`, `validate` and `score` refuse bad input with exit 2, before injecting anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]


def harness(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout
    )


GOOD_SCENARIO = f"{{name: s, experiment: {ROOT / 'experiments/local/replica-kill.yaml'}}}"
PLANS = {
    "unknown key": (f"name: p\nload: {{locustfile: {ROOT / 'loadtests/subscriptions.py'}}}\nscenarios: [{GOOD_SCENARIO}]\nbogus: 1\n",
                    ":4:", "bogus"),
    "wrong type": (f"name: p\nload: {{locustfile: {ROOT / 'loadtests/subscriptions.py'}, users: many}}\nscenarios: [{GOOD_SCENARIO}]\n",
                   ":2:", "users"),
    "bad gate": (f"name: p\nload: {{locustfile: {ROOT / 'loadtests/subscriptions.py'}}}\nscenarios: [{GOOD_SCENARIO}]\ngates: ['recovery_time_s <']\n",
                 ":4:", "gate"),
    "missing experiment": (f"name: p\nload: {{locustfile: {ROOT / 'loadtests/subscriptions.py'}}}\nscenarios: [{{name: s, experiment: nowhere/x.yaml}}]\n",
                           ":3:", "nowhere/x.yaml"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(PLANS))
@pytest.mark.parametrize("command", ["run", "gate", "validate"])
def test_bad_plan_exits_2_with_file_and_line_before_anything_runs(
    tmp_path: Path, case: str, command: str
) -> None:
    """A wrong plan is reported with file and line, exit 2, no traceback, and no run is started."""
    text, line, needle = PLANS[case]
    plan = tmp_path / "plan.yaml"
    plan.write_text(text)
    extra = (
        ["--reports", str(tmp_path / "reports"), "--dir", str(tmp_path / "testbed")]
        if command != "validate"
        else []
    )
    result = harness(command, str(plan), *extra)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert f"{plan}{line}" in output and needle in output
    assert "Traceback" not in output
    assert not (tmp_path / "reports").exists() and not (tmp_path / "testbed").exists()


def test_experiment_failing_chaos_validation_is_refused(tmp_path: Path) -> None:
    """An experiment whose python activity does not exist fails validation with its file, before any run."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        (ROOT / "experiments/local/replica-kill.yaml")
        .read_text()
        .replace("func: kill_replica", "func: no_such_action")
    )
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"name: p\nload: {{locustfile: {ROOT / 'loadtests/subscriptions.py'}}}\nscenarios: [{{name: s, experiment: {broken}}}]\n"
    )
    result = harness(
        "run", str(plan), "--reports", str(tmp_path / "reports"), "--dir", str(tmp_path / "testbed")
    )
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert str(broken) in output and "no_such_action" in output
    assert not (tmp_path / "testbed").exists()


def test_bundled_plans_and_experiments_validate() -> None:
    """Every bundled plan and local experiment is valid."""
    files = sorted((ROOT / "experiments/plans").glob("*.yaml")) + sorted(
        (ROOT / "experiments/local").glob("*.yaml")
    )
    result = harness("validate", *map(str, files))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("valid") == len(files)


def test_score_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    """`harness score` on a random folder says what is missing, exit 2."""
    result = harness("score", str(tmp_path))
    assert result.returncode == 2
    assert "plan.json" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--profile", "self-managed", "--profile", "bogus"], "--profile: expected self-managed or managed"),
        (["--profile", "managed", "--profile", "managed"], "--profile managed: given twice"),
        (["--context", "eks=https://subs.example"], "--context eks: the plan's target is the testbed"),
    ],
    ids=["unknown profile", "repeated profile", "context on a testbed plan"],
)
def test_bad_sides_exit_2_naming_the_flag_before_anything_runs(
    tmp_path: Path, flags: list[str], needle: str
) -> None:
    """A wrong --profile or --context side is refused with exit 2 and the flag named; no run folder
    and no testbed folder is made."""
    reports, testbed = tmp_path / "reports", tmp_path / "testbed"
    result = harness("run", "local-quick", "--reports", str(reports), "--dir", str(testbed), *flags)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert needle in output and "Traceback" not in output
    assert list(tmp_path.iterdir()) == []

"""`harness validate`: plans and Chaos Toolkit experiments, problems at file and line."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from harness.plan import loading, validation

ROOT = Path(__file__).resolve().parents[2]
LOCAL = sorted((ROOT / "experiments" / "local").glob("*.yaml"))
PLANS = sorted((ROOT / "experiments" / "plans").glob("*.yaml"))
REPLICA_KILL = (ROOT / "experiments" / "local" / "replica-kill.yaml").read_text()


def _line_of(text: str, fragment: str) -> int:
    """The 1-based line on which `fragment` first appears."""
    return next(i for i, line in enumerate(text.splitlines(), 1) if fragment in line)


class TestValidFiles:
    @pytest.mark.parametrize("path", LOCAL, ids=lambda p: p.stem)
    def test_local_experiments(self, path: Path) -> None:
        """Every bundled local experiment is recognised as an experiment and is valid."""
        assert validation.validate_file(path) == "experiment"

    @pytest.mark.parametrize("path", PLANS, ids=lambda p: p.stem)
    def test_bundled_plans(self, path: Path) -> None:
        """Every bundled plan is recognised as a plan and it and its experiments are valid."""
        assert validation.validate_file(path) == "plan"

    def test_json_experiment(self, tmp_path: Path) -> None:
        """An experiment in JSON is validated like one in YAML."""
        import json

        import yaml

        path = tmp_path / "e.json"
        path.write_text(json.dumps(yaml.safe_load(REPLICA_KILL), indent=2))
        assert validation.validate_file(path) == "experiment"

    def test_chaoslib_stays_quiet(self, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
        """Validation prints nothing, valid or not, and leaves chaoslib's logger as it was."""
        broken = tmp_path / "broken.yaml"
        broken.write_text(REPLICA_KILL.replace("func: kill_replica", "func: no_such_function"))
        logger = logging.getLogger("chaostoolkit")
        logger.setLevel(logging.DEBUG)
        handler = logging.StreamHandler()
        logger.addHandler(handler)
        try:
            validation.validate_file(LOCAL[0])
            with pytest.raises(validation.ExperimentError):
                validation.validate_file(broken)
        finally:
            logger.removeHandler(handler)
            logger.setLevel(logging.NOTSET)
        assert capsys.readouterr() == ("", "")
        assert not logger.disabled


# Each case: a change to the replica-kill experiment, the fragment on the line expected, and
# what the message must say.
BROKEN = [
    pytest.param(
        ("func: kill_replica", "func: no_such_function"),
        "name: kill-a-replica",
        "method.0 (activity 'kill-a-replica'): The python module 'harness.chaos.activities.testbed' "
        "does not expose a function called 'no_such_function'",
        id="missing-function",
    ),
    pytest.param(
        ("func: kill_replica", "func: kill_replica\n      arguments:\n        bogus: 1"),
        "name: kill-a-replica",
        "method.0 (activity 'kill-a-replica'): argument 'bogus' is not part of the function signature",
        id="unknown-argument",
    ),
    pytest.param(
        ("timeout_s: 90", "timeout_s: 90\n        surprise: 2"),
        "name: wait-until-serving-again",
        "rollbacks.0 (activity 'wait-until-serving-again'): argument 'surprise' is not part of the function signature",
        id="unknown-argument-in-rollback",
    ),
    pytest.param(
        ("      tolerance: 3\n", ""),
        "name: every-replica-is-an-endpoint",
        "steady-state-hypothesis.probes.1 (activity 'every-replica-is-an-endpoint'): "
        "hypothesis probe must have a tolerance entry",
        id="probe-without-tolerance",
    ),
    pytest.param(
        (
            "module: harness.chaos.activities.testbed\n        func: endpoints_count",
            "module: harness.nowhere\n        func: endpoints_count",
        ),
        "name: every-replica-is-an-endpoint",
        "could not find Python module 'harness.nowhere'",
        id="missing-module",
    ),
    pytest.param(
        ("rollbacks:\n", "  - ref: no-such-activity\nrollbacks:\n"),
        "- ref: no-such-activity",
        "method.1 (ref 'no-such-activity'): referenced activity 'no-such-activity' could not be found in the experiment",
        id="dangling-ref",
    ),
]


class TestBrokenExperiments:
    @pytest.mark.parametrize(("change", "fragment", "message"), BROKEN)
    def test_error_names_file_and_activity_line(
        self, tmp_path: Path, change: tuple[str, str], fragment: str, message: str
    ) -> None:
        """chaoslib's complaint is reported at the line of the activity it is about."""
        old, new = change
        assert old in REPLICA_KILL
        text = REPLICA_KILL.replace(old, new, 1)
        path = tmp_path / "broken.yaml"
        path.write_text(text)
        with pytest.raises(validation.ExperimentError) as caught:
            validation.validate_file(path)
        line = _line_of(text, fragment)
        assert str(caught.value).startswith(f"{path}:{line}: ")
        assert message in str(caught.value)
        assert caught.value.exit_code == 2

    def test_experiment_level_problem_points_at_the_section(self, tmp_path: Path) -> None:
        """A problem with a section rather than an activity is reported at that section's key."""
        text = REPLICA_KILL.replace(
            "  title: The service answers through the load balancer with every replica behind it\n", ""
        )
        path = tmp_path / "e.yaml"
        path.write_text(text)
        with pytest.raises(validation.ExperimentError) as caught:
            validation.validate_file(path)
        line = _line_of(text, "steady-state-hypothesis:")
        assert str(caught.value) == f"{path}:{line}: steady-state-hypothesis: hypothesis requires a title"

    def test_yaml_syntax_error_has_its_line(self, tmp_path: Path) -> None:
        """A YAML syntax error is reported at the line the parser stopped."""
        text = REPLICA_KILL.replace("      after: 8\n", "      after: 8: 9\n")
        path = tmp_path / "e.yaml"
        path.write_text(text)
        with pytest.raises(loading.FileProblemsError) as caught:
            validation.validate_file(path)
        assert caught.value.line == _line_of(text, "after: 8: 9")
        assert str(caught.value).startswith(f"{path}:{caught.value.line}: YAML syntax: ")

    def test_json_syntax_error_has_its_line(self, tmp_path: Path) -> None:
        """A JSON syntax error is reported at its line."""
        path = tmp_path / "e.json"
        path.write_text('{\n  "title": "t",\n  "method": [,]\n}\n')
        with pytest.raises(
            loading.FileProblemsError, match=rf"^{re.escape(str(path))}:3: JSON syntax: Expecting value"
        ):
            validation.validate_file(path)

    def test_neither_plan_nor_experiment(self, tmp_path: Path) -> None:
        """A file that is neither a plan nor an experiment says what each would need."""
        path = tmp_path / "x.yaml"
        path.write_text("title: something\n")
        with pytest.raises(
            loading.FileProblemsError, match=r"x\.yaml:1: neither a plan .* nor a Chaos Toolkit"
        ):
            validation.validate_file(path)


class TestPlanWithExperiments:
    def test_problems_in_plan_and_experiment_are_reported_together(self, tmp_path: Path) -> None:
        """A plan's own problems and those of the experiments it names come in one error, each
        with its own file and line."""
        experiment = tmp_path / "exp.yaml"
        experiment.write_text(REPLICA_KILL.replace("func: kill_replica", "func: no_such_function"))
        plan = tmp_path / "plan.yaml"
        plan.write_text(
            "name: t\n"
            "load: {locustfile: loadtests/subscriptions.py, users: 0}\n"
            "scenarios:\n"
            "  - {name: a, experiment: exp.yaml}\n"
            "  - {name: b, experiment: exp.yaml}\n"
        )
        with pytest.raises(loading.PlanError) as caught:
            validation.validate_file(plan)
        problems = caught.value.problems
        assert [(p.path, p.line) for p in problems] == [
            (plan, 2),
            (experiment, _line_of(experiment.read_text(), "name: kill-a-replica")),
        ]
        assert "no_such_function" in problems[1].message
        assert str(caught.value).startswith(f"{plan}: 2 problems:")

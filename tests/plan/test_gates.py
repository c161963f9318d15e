"""Gate expressions: parsing, evaluation, and that nothing is ever evaluated as Python."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.errors import InputError
from harness.plan import gates
from harness.plan.loading import PlanError, load_plan
from harness.result import GateOutcome
from harness.store import history

ROOT = Path(__file__).resolve().parents[2]

METRICS: dict[str, Any] = {
    "error_rate": 0.02,
    "recovery_time_s": 12.5,
    "data_loss": 0,
    "requests": 1000,
    "failed_requests": 20,
    "latency_ms": {"baseline": {"p95": 100.0}, "fault": {"p95": 250.0}},
}


def _mean(*values: float) -> float:
    return sum(values) / len(values)


class TestEvaluate:
    @pytest.mark.parametrize(
        ("text", "passed", "value"),
        [
            ("error_rate < 0.05", True, 0.02),
            ("error_rate <= 0.02", True, 0.02),
            ("error_rate > 0.02", False, 0.02),
            ("error_rate >= 0.02", True, 0.02),
            ("data_loss == 0", True, 0.0),
            ("data_loss != 0", False, 0.0),
            ("failed_requests / requests == 0.02", True, 0.02),
            ("recovery_time_s + 2.5 * 2 == 17.5", True, 17.5),
            ("(recovery_time_s + 2.5) * 2 == 30", True, 30.0),
            ("10 - 4 - 3 == 3", True, 3.0),
            ("64 / 4 / 2 == 8", True, 8.0),
            ("-recovery_time_s < -12", True, -12.5),
            ("- -2 == 2", True, 2.0),
            ("1e3 > 999", True, 1000.0),
            (".5 == 0.5", True, 0.5),
            ("latency_ms.fault.p95 < 2 * latency_ms.baseline.p95", False, 250.0),
            ("latency_ms.fault.p95 < 3 * latency_ms.baseline.p95", True, 250.0),
            ("mean(3, 5) > 3", True, 4.0),
            ("recovery_time_s < 1.5 * mean(recovery_time_s, 5 + 5)", True, 12.5),
        ],
    )
    def test_table(self, text: str, passed: bool, value: float) -> None:
        """Comparisons, arithmetic with precedence, parentheses, unary minus, nested names and
        functions evaluate like ordinary arithmetic, and the left side is reported."""
        result = gates.evaluate(gates.parse(text), METRICS, {"mean": _mean})
        assert (result.passed, result.value, result.reason) == (passed, pytest.approx(value), None)
        assert result.expression == text

    def test_null_metric_fails_with_reason(self) -> None:
        """A metric that was not measured fails the gate with a reason instead of raising."""
        result = gates.evaluate(gates.parse("recovery_time_s < 30"), {**METRICS, "recovery_time_s": None})
        assert not result.passed and result.value is None
        assert result.reason == (
            "recovery_time_s is null (the scenario did not recover within the observation window)"
        )

    def test_null_on_the_right_keeps_the_left_value(self) -> None:
        """A null on the right side fails the gate and still reports the left side's value."""
        result = gates.evaluate(
            gates.parse("error_rate < recovery_time_s"), {**METRICS, "recovery_time_s": None}
        )
        assert (result.passed, result.value) == (False, 0.02)

    def test_null_inside_a_nested_name(self) -> None:
        """A null window makes every metric below it null."""
        result = gates.evaluate(
            gates.parse("latency_ms.fault.p95 < 300"), {**METRICS, "latency_ms": {"fault": None}}
        )
        assert not result.passed
        assert result.reason is not None and result.reason.startswith("latency_ms.fault.p95 is null")

    def test_function_returning_none_fails(self) -> None:
        """A function without a value (too little history) fails the gate with a reason."""
        result = gates.evaluate(
            gates.parse("recovery_time_s < median_last(5)"), METRICS, {"median_last": lambda n: None}
        )
        assert not result.passed and result.value == 12.5
        assert result.reason == "median_last(5) is null (the function had no value)"

    def test_division_by_zero_fails(self) -> None:
        """Dividing by zero fails the gate, naming the division."""
        result = gates.evaluate(gates.parse("failed_requests / data_loss < 1"), METRICS)
        assert not result.passed and result.value is None
        assert result.reason == "division by zero in failed_requests / data_loss"

    def test_non_numeric_value_fails(self) -> None:
        """A name that leads to a group of metrics, not a number, fails the gate."""
        result = gates.evaluate(gates.parse("latency_ms.fault < 1"), METRICS)
        assert not result.passed
        assert result.reason is not None and "is not a number" in result.reason

    def test_unknown_metric_is_an_error_listing_known_ones(self) -> None:
        """An unknown metric raises, suggesting the closest name and listing all known ones."""
        with pytest.raises(gates.GateNameError) as caught:
            gates.evaluate(gates.parse("recovery_tme_s < 30"), METRICS)
        message = str(caught.value)
        assert "unknown metric 'recovery_tme_s'" in message
        assert "did you mean 'recovery_time_s'?" in message
        assert "latency_ms.fault.p95" in message and "data_loss" in message
        assert isinstance(caught.value, InputError)

    def test_unknown_metric_is_found_behind_a_null(self) -> None:
        """A null early in the gate does not hide an unknown name later in it."""
        with pytest.raises(gates.GateNameError, match="'nope'"):
            gates.evaluate(gates.parse("recovery_time_s + nope < 30"), {**METRICS, "recovery_time_s": None})

    def test_unknown_function_is_an_error_listing_known_ones(self) -> None:
        """Calling a function the caller did not provide raises, listing the ones it did."""
        with pytest.raises(gates.GateNameError, match=r"unknown function 'eval'.*known: mean"):
            gates.evaluate(gates.parse("eval(1) < 2"), METRICS, {"mean": _mean})


class TestParse:
    @pytest.mark.parametrize(
        ("text", "column", "expected"),
        [
            ("", 1, "a number, a metric name"),
            ("recovery_time_s", 16, "a comparison"),
            ("recovery_time_s <", 18, "a number, a metric name"),
            ("a < b < c", 7, "the end of the gate"),
            ("a = 1", 3, "'==' compares"),
            ("(a < 1", 4, "')'"),
            ("f(1 2) < 3", 5, "',' or ')'"),
            ("a.b. < 1", 4, "a number, a metric name"),
            ("300ms > 1", 4, "a comparison"),
            ("__import__('os').system('x') < 1", 12, "a number, a metric name"),
            ("1 < 2; import os", 6, "a number, a metric name"),
            ("lambda: 0 < 1", 7, "a number, a metric name"),
            ("error_rate < 0.05 or True", 19, "the end of the gate"),
            ("[].__class__ < 1", 1, "a number, a metric name"),
        ],
    )
    def test_syntax_errors(self, text: str, column: int, expected: str) -> None:
        """Text outside the grammar, Python included, is a syntax error with its column."""
        with pytest.raises(gates.GateSyntaxError) as caught:
            gates.parse(text)
        assert caught.value.column == column
        assert expected in caught.value.expected
        assert f"column {column}: expected" in str(caught.value)
        assert isinstance(caught.value, InputError)

    def test_attributes_are_only_metric_names(self) -> None:
        """A dunder path is just an unknown metric name: values are looked up, never attributes."""
        gate = gates.parse("__class__.__name__ < 1")
        with pytest.raises(gates.GateNameError):
            gates.evaluate(gate, METRICS)

    def test_names_and_functions(self) -> None:
        """A gate lists the metrics it reads (including inside calls) apart from the functions."""
        gate = gates.parse("latency_ms.fault.p95 / max(latency_ms.baseline.p95, 1) < median_last(5)")
        assert gate.names == {"latency_ms.fault.p95", "latency_ms.baseline.p95"}
        assert gate.functions == {"max", "median_last"}

    @pytest.mark.parametrize(
        ("text", "subject"),
        [
            ("recovery_time_s<30", "recovery_time_s"),
            ("a - (b - c) < 1", "a - (b - c)"),
            ("a - b - c < 1", "a - b - c"),
            ("(a + b) * c < 1", "(a + b) * c"),
            ("a + b * c < 1", "a + b * c"),
            ("-(a + 1.5) < 1", "-(a + 1.5)"),
            ("f(a, 2) / 4 < 1", "f(a, 2) / 4"),
        ],
    )
    def test_subject_is_canonical_and_reads_back(self, text: str, subject: str) -> None:
        """The left side renders canonically, and the rendering parses to the same tree."""
        gate = gates.parse(text)
        assert gate.subject == subject
        assert gates.parse(f"{subject} < 1").left == gate.left


class TestValidateNames:
    def test_known_metric_names_pass(self) -> None:
        """Every metric of result.json is accepted, nested latency names included."""
        gates.validate_names(
            gates.parse("latency_ms.recovery.p99 + kpi_lost < resilience_score"), gates.METRIC_NAMES
        )

    @pytest.mark.parametrize("text", ["generator_late_share < 0.02", "generator_lag_max_ms <= 100"])
    def test_the_load_generators_lateness_can_be_gated(self, text: str) -> None:
        """A plan can refuse a run whose load generator could not keep its schedule."""
        gate = gates.parse(text)
        gates.validate_names(gate, gates.METRIC_NAMES)
        late = {"generator_late_share": 0.08, "generator_lag_max_ms": 290.2}
        on_time = {"generator_late_share": 0.0, "generator_lag_max_ms": 12.0}
        assert (gates.evaluate(gate, late).passed, gates.evaluate(gate, on_time).passed) == (False, True)

    def test_unknown_names_are_all_listed(self) -> None:
        """Every unknown name is reported at once."""
        with pytest.raises(gates.GateNameError, match=r"unknown metrics 'latency_ms\.p95', 'nope'"):
            gates.validate_names(gates.parse("nope + latency_ms.p95 < 1"), gates.METRIC_NAMES)

    def test_functions_checked_when_given(self) -> None:
        """Function names are checked against the history functions unless the caller names others."""
        gate = gates.parse("recovery_time_s < median_last(5)")
        gates.validate_names(gate, gates.METRIC_NAMES)
        with pytest.raises(gates.GateNameError, match="unknown function 'median_last'"):
            gates.validate_names(gate, gates.METRIC_NAMES, functions=set())


PLAN = "release-gate"
TARGET = "testbed/managed"
REGRESSION_GATE = "recovery_time_s <= 1.2 * median_last(3)"


def _record_runs(store: history.HistoryStore, recovery_times: list[float | None]) -> None:
    """Earlier completed runs of the release gate, one a minute, with these recovery times."""
    for i, recovery_time_s in enumerate(recovery_times):
        store.record(
            {
                "schema": "harness.result/v1",
                "run_id": f"earlier-{i}",
                "plan": {"name": PLAN},
                "target": {"kind": "testbed", "profile": "managed"},
                "started": 1000.0 + 60 * i,
                "ended": 1030.0 + 60 * i,
                "status": "completed",
                "passed": True,
                "scenarios": [
                    {
                        "name": "zone-latency",
                        "trial": 1,
                        "status": "completed",
                        "passed": True,
                        "metrics": {**METRICS, "recovery_time_s": recovery_time_s},
                    }
                ],
            }
        )


def _gate_now(store: history.HistoryStore, text: str, recovery_time_s: float | None) -> GateOutcome:
    """Evaluate a gate for a new run after the recorded ones, as the engine does."""
    gate = gates.parse(text)
    gates.validate_names(gate, gates.METRIC_NAMES)
    functions = history.history_functions(store, PLAN, TARGET, "zone-latency", gate.subject, before=9999.0)
    return gates.evaluate(gate, {**METRICS, "recovery_time_s": recovery_time_s}, functions)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[history.HistoryStore]:
    with history.HistoryStore(f"sqlite:///{tmp_path / 'history.sqlite'}") as opened:
        yield opened


class TestHistoryGates:
    def test_regression_fails_with_value_and_reason(self, store: history.HistoryStore) -> None:
        """Recovery at 4 s after three runs at about 2 s fails, saying what it was compared with."""
        _record_runs(store, [1.9, 2.0, 2.1])
        result = _gate_now(store, REGRESSION_GATE, 4.0)
        assert (result.passed, result.value, result.skipped) == (False, 4.0, False)
        assert result.reason == "median_last(3) = 2 over 3 earlier runs; 1.2 * median_last(3) = 2.4"
        assert result.to_json() == {
            "expression": REGRESSION_GATE,
            "value": 4.0,
            "passed": False,
            "reason": result.reason,
        }

    def test_no_regression_passes(self, store: history.HistoryStore) -> None:
        """The same new run at 2.1 s is within 20 % of the earlier median and passes."""
        _record_runs(store, [1.9, 2.0, 2.1])
        result = _gate_now(store, REGRESSION_GATE, 2.1)
        assert (result.passed, result.value, result.skipped) == (True, 2.1, False)

    def test_only_the_last_n_runs_count(self, store: history.HistoryStore) -> None:
        """An old slow era does not excuse a regression against the last n runs."""
        _record_runs(store, [9.0, 9.0, 9.0, 1.9, 2.0, 2.1])
        assert not _gate_now(store, REGRESSION_GATE, 4.0).passed
        assert _gate_now(store, "recovery_time_s <= 1.2 * median_last(6)", 4.0).passed

    def test_first_run_is_skipped_not_failed(self, store: history.HistoryStore) -> None:
        """With no earlier run, a history gate passes, marked skipped, saying why."""
        result = _gate_now(store, REGRESSION_GATE, 4.0)
        assert (result.passed, result.skipped, result.value) == (True, True, 4.0)
        assert result.reason is not None
        assert result.reason.startswith(
            "no earlier runs of this plan on this target (release-gate on testbed/managed"
        )
        assert result.reason.endswith("median_last(3) has no value")
        assert result.to_json()["skipped"] is True

    def test_first_run_that_did_not_recover_still_fails(self, store: history.HistoryStore) -> None:
        """Skipping for lack of history never hides an absolute failure on the left side."""
        result = _gate_now(store, REGRESSION_GATE, None)
        assert (result.passed, result.skipped) == (False, False)
        assert result.reason is not None and result.reason.startswith("recovery_time_s is null")

    def test_fewer_runs_than_asked_are_used_and_counted(self, store: history.HistoryStore) -> None:
        """With two earlier runs, median_last(5) is their median, and the reason says only two exist."""
        _record_runs(store, [2.0, 3.0])
        result = _gate_now(store, "recovery_time_s <= median_last(5)", 4.0)
        assert not result.passed
        assert result.reason == "median_last(5) = 2.5 over 2 earlier runs (only 2 recorded)"

    def test_earlier_runs_that_did_not_recover(self, store: history.HistoryStore) -> None:
        """Earlier runs that never recovered count as the slowest: max_last is then infinite."""
        _record_runs(store, [2.0, None])
        assert _gate_now(store, "recovery_time_s < max_last(2)", 60.0).passed
        result = _gate_now(store, "recovery_time_s < min_last(2) + 1", 4.0)
        assert not result.passed
        assert result.reason == (
            "min_last(2) = 2 over 2 earlier runs, 1 of which did not recover; min_last(2) + 1 = 3"
        )

    def test_skipped_is_absent_from_old_results(self) -> None:
        """A gate without history functions writes the same entry as before history existed."""
        result = gates.evaluate(gates.parse("error_rate < 0.05"), METRICS)
        assert result.to_json() == {"expression": "error_rate < 0.05", "value": 0.02, "passed": True}
        assert GateOutcome(expression="x < 1", value=0.5, passed=True).skipped is False


class TestHistoryValidation:
    @pytest.mark.parametrize(
        "text",
        [
            "recovery_time_s <= 1.2 * median_last(5)",
            "latency_ms.fault.p99 < mean_last(10) + 50",
            "error_rate <= max(0.01, max_last(1))",
            "resilience_score >= min_last(100) - 5",
        ],
    )
    def test_history_functions_are_accepted(self, text: str) -> None:
        """A plan's gates may compare a metric with its history."""
        gates.validate_names(gates.parse(text), gates.METRIC_NAMES, gates.HISTORY_FUNCTIONS | {"max"})

    @pytest.mark.parametrize(
        ("text", "got"),
        [
            ("recovery_time_s < median_last(0)", "0"),
            ("recovery_time_s < median_last(101)", "101"),
            ("recovery_time_s < median_last(2.5)", "2.5"),
            ("recovery_time_s < median_last(-3)", "-3"),
            ("recovery_time_s < median_last()", "nothing"),
            ("recovery_time_s < median_last(3, 4)", "3, 4"),
            ("recovery_time_s < median_last(error_rate)", "error_rate"),
        ],
    )
    def test_n_must_be_a_whole_number_of_runs(self, text: str, got: str) -> None:
        """n is one literal whole number from 1 to 100, else the plan is rejected with what was wrong."""
        with pytest.raises(gates.GateError) as caught:
            gates.validate_names(gates.parse(text), gates.METRIC_NAMES)
        assert str(caught.value) == (
            f"gate {text!r}: median_last(n) takes one whole number n of earlier runs, from 1 to 100 (got {got})"
        )

    def test_left_side_must_be_one_metric(self) -> None:
        """History is kept per metric, so the left side of a history gate is a metric name."""
        with pytest.raises(
            gates.GateError, match=r"left side must be one metric name \(got 'failed_requests / requests'\)"
        ):
            gates.validate_names(
                gates.parse("failed_requests / requests < median_last(3)"), gates.METRIC_NAMES
            )

    def test_unknown_function_in_a_plan_is_reported_at_its_line(self, tmp_path: Path) -> None:
        """A misspelt history function is an error at the gate's file and line, with a suggestion."""
        path = tmp_path / "plan.yaml"
        experiment = ROOT / "experiments" / "local" / "replica-kill.yaml"
        path.write_text(
            "name: t\n"
            "load: {locustfile: loadtests/subscriptions.py}\n"
            f"scenarios:\n  - {{name: replica-kill, experiment: {experiment}}}\n"
            "gates:\n"
            "  - recovery_time_s <= 1.2 * median_last(5)\n"
            "  - recovery_time_s <= 1.2 * median_lst(5)\n"
        )
        with pytest.raises(PlanError) as caught:
            load_plan(path)
        [problem] = caught.value.problems
        assert (problem.path, problem.line) == (path, 7)
        assert "unknown function 'median_lst' ('median_lst': did you mean 'median_last'?)" in problem.message
        assert "known: max_last, mean_last, median_last, min_last" in problem.message

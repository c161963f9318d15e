"""Gate expressions: parsing, evaluation, and that nothing is ever evaluated as Python."""

from __future__ import annotations

from typing import Any

import pytest

from harness.errors import InputError
from harness.plan import gates

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

    def test_unknown_names_are_all_listed(self) -> None:
        """Every unknown name is reported at once."""
        with pytest.raises(gates.GateNameError, match=r"unknown metrics 'latency_ms\.p95', 'nope'"):
            gates.validate_names(gates.parse("nope + latency_ms.p95 < 1"), gates.METRIC_NAMES)

    def test_functions_checked_when_given(self) -> None:
        """Function names are checked only when the caller knows them."""
        gate = gates.parse("recovery_time_s < median_last(5)")
        gates.validate_names(gate, gates.METRIC_NAMES)
        with pytest.raises(gates.GateNameError, match="unknown function 'median_last'"):
            gates.validate_names(gate, gates.METRIC_NAMES, functions=set())

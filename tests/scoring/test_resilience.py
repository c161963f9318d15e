"""The resilience score: 100 minus capped, documented penalties."""

from __future__ import annotations

import pytest

from harness.scoring.resilience import resilience_score

PERFECT = {
    "recovery_time_s": 0.0,
    "target_recovery_s": 60.0,
    "availability": 1.0,
    "error_rate": 0.0,
    "peak_p99_ms": 50.0,
    "p95_threshold_ms": 100.0,
    "data_loss": 0,
}


class TestResilienceScore:
    @pytest.mark.parametrize(
        ("changes", "score", "penalty"),
        [
            ({}, 100.0, {}),
            ({"recovery_time_s": 30.0}, 80.0, {"recovery": 20.0}),
            ({"recovery_time_s": 600.0}, 60.0, {"recovery": 40.0}),
            ({"recovery_time_s": None}, 60.0, {"recovery": 40.0}),
            ({"availability": 0.8}, 95.0, {"availability": 5.0}),
            ({"availability": None}, 75.0, {"availability": 25.0}),
            ({"error_rate": 0.01}, 96.0, {"errors": 4.0}),
            ({"error_rate": 0.5}, 80.0, {"errors": 20.0}),
            ({"error_rate": None}, 80.0, {"errors": 20.0}),
            ({"peak_p99_ms": 150.0}, 95.0, {"latency": 5.0}),
            ({"peak_p99_ms": 90.0}, 100.0, {}),
            ({"peak_p99_ms": 5000.0}, 90.0, {"latency": 10.0}),
            ({"peak_p99_ms": None}, 90.0, {"latency": 10.0}),
            ({"peak_p99_ms": 5000.0, "p95_threshold_ms": None}, 100.0, {}),
            ({"data_loss": 2}, 40.0, {"data_loss": 60.0}),
            ({"data_loss": None}, 100.0, {}),
            (
                {
                    "recovery_time_s": None,
                    "availability": 0.0,
                    "error_rate": 1.0,
                    "peak_p99_ms": None,
                    "data_loss": 1,
                },
                0.0,
                {"recovery": 40.0, "availability": 25.0, "errors": 20.0, "latency": 10.0, "data_loss": 5.0},
            ),
        ],
    )
    def test_each_penalty_is_proportional_and_capped(
        self, changes: dict, score: float, penalty: dict
    ) -> None:
        """Each criterion subtracts its documented share; unmeasured values cost the full penalty."""
        got = resilience_score(**{**PERFECT, **changes})
        assert got.score == score
        expected = {
            "recovery": 0.0,
            "availability": 0.0,
            "errors": 0.0,
            "latency": 0.0,
            "data_loss": 0.0,
            **penalty,
        }
        assert got.penalties == expected

"""The resilience score: 100 minus capped, documented penalties."""

from __future__ import annotations

import itertools

import pytest

from harness.scoring.resilience import recovery_penalty, resilience_score

PERFECT = {
    "recovery_time_s": 0.0,
    "target_recovery_s": 60.0,
    "availability": 1.0,
    "error_rate": 0.0,
    "p99_ms": 50.0,
    "p95_threshold_ms": 100.0,
    "data_loss": 0,
}


class TestResilienceScore:
    @pytest.mark.parametrize(
        ("changes", "score", "penalty"),
        [
            ({}, 100.0, {}),
            ({"recovery_time_s": 30.0}, 88.3, {"recovery": 11.67}),  # 35 x 30 / (30 + 60)
            ({"recovery_time_s": 60.0}, 82.5, {"recovery": 17.5}),  # half the finite penalty at the target
            ({"recovery_time_s": 600.0}, 68.2, {"recovery": 31.82}),
            ({"recovery_time_s": None}, 60.0, {"recovery": 40.0}),
            ({"availability": 0.8}, 95.0, {"availability": 5.0}),
            ({"availability": None}, 75.0, {"availability": 25.0}),
            ({"error_rate": 0.01}, 96.0, {"errors": 4.0}),
            ({"error_rate": 0.5}, 80.0, {"errors": 20.0}),
            ({"error_rate": None}, 80.0, {"errors": 20.0}),
            ({"p99_ms": 150.0}, 95.0, {"latency": 5.0}),
            ({"p99_ms": 90.0}, 100.0, {}),
            ({"p99_ms": 5000.0}, 90.0, {"latency": 10.0}),
            ({"p99_ms": None}, 90.0, {"latency": 10.0}),
            ({"p99_ms": 5000.0, "p95_threshold_ms": None}, 100.0, {}),
            ({"data_loss": 2}, 40.0, {"data_loss": 60.0}),
            ({"data_loss": None}, 100.0, {}),
            ({"data_loss": None, "data_loss_unverified": True}, 50.0, {"data_loss": 50.0}),
            ({"data_loss": 0, "data_loss_unverified": True}, 100.0, {}),  # a count is a check that worked
            (
                {"data_loss": None, "data_loss_unverified": True, "recovery_time_s": None, "error_rate": 0.5},
                40.0,
                {"recovery": 40.0, "errors": 20.0},
            ),
            (
                {
                    "recovery_time_s": None,
                    "availability": 0.0,
                    "error_rate": 1.0,
                    "p99_ms": None,
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


class TestOrdering:
    """The score orders outcomes: what is worse for users never scores better."""

    @pytest.mark.parametrize("target_recovery_s", [10.0, 60.0, 300.0])
    def test_not_recovering_scores_below_any_recovery(self, target_recovery_s: float) -> None:
        """Recovering at 10x, 100x or 1,000x the target still beats never recovering, after rounding."""
        never = resilience_score(
            **{**PERFECT, "target_recovery_s": target_recovery_s, "recovery_time_s": None}
        )
        for factor in (1.0, 10.0, 100.0, 1000.0):
            late = resilience_score(
                **{
                    **PERFECT,
                    "target_recovery_s": target_recovery_s,
                    "recovery_time_s": factor * target_recovery_s,
                }
            )
            assert late.score > never.score
            assert late.penalties["recovery"] < recovery_penalty(None, target_recovery_s)

    def test_a_later_recovery_never_costs_less(self) -> None:
        """The recovery penalty grows with the recovery time, from 0 at 0 s."""
        times = [0.0, 1.0, 5.0, 30.0, 59.0, 61.0, 120.0, 600.0, 3600.0, 86_400.0]
        penalties = [recovery_penalty(t, 60.0) for t in times]
        assert penalties[0] == 0.0
        assert all(a < b for a, b in itertools.pairwise(penalties))
        assert penalties[-1] < recovery_penalty(None, 60.0) - 4.9

    def test_an_unverified_check_scores_between_a_clean_check_and_a_lost_write(self) -> None:
        """Unverified: below a verified 0, above one write known lost."""
        clean = resilience_score(**PERFECT).score
        unverified = resilience_score(**{**PERFECT, "data_loss": None, "data_loss_unverified": True}).score
        lost = resilience_score(**{**PERFECT, "data_loss": 1}).score
        assert clean > unverified > lost

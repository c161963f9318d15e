"""The recovery watch's check budget: a check costing c seconds is next due c / share later."""

from __future__ import annotations

import pytest

from harness.engine.budget import CheckBudget


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def run_check(budget: CheckBudget, clock: Clock, cost_s: float) -> None:
    with budget.spend():
        clock.t += cost_s


def test_cheap_checks_run_every_second() -> None:
    """A short timeline (a few ms to score) is checked at the minimum interval, as before."""
    clock = Clock()
    budget = CheckBudget(share=0.1, min_interval_s=1.0, clock=clock)
    assert budget.due()
    run_check(budget, clock, 0.005)
    clock.t = 100.99
    assert not budget.due()
    clock.t = 101.0
    assert budget.due()


def test_a_costly_check_takes_at_most_its_share_of_the_time() -> None:
    """A 0.6 s check (a timeline of a few hours) with a 10 % share is next due 6 s after it began,
    so over a long watch the checks take a tenth of the time, not most of it."""
    clock = Clock()
    budget = CheckBudget(share=0.1, clock=clock)
    spent = 0.0
    checks = 0
    while clock.t < 160.0:
        if budget.due():
            run_check(budget, clock, 0.6)
            spent += 0.6
            checks += 1
        clock.t += 0.25  # the engine's own loop
    assert checks == 10
    assert spent / 60.0 == pytest.approx(0.1, abs=0.011)


def test_a_failed_check_still_counts_its_cost() -> None:
    """A check that raises (a timeline not readable yet) is spaced like any other."""
    clock = Clock()
    budget = CheckBudget(share=0.5, clock=clock)
    with pytest.raises(ValueError), budget.spend():
        clock.t += 3.0
        raise ValueError("half-written")
    clock.t = 105.9
    assert not budget.due()
    clock.t = 106.0
    assert budget.due()


def test_share_must_be_a_fraction() -> None:
    with pytest.raises(ValueError, match="share"):
        CheckBudget(share=0)

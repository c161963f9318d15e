"""The intended schedule: catches up after a stall, and says how late each task started."""

from __future__ import annotations

import random

import pytest

from harness.load.pacing import Schedule


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_on_time_user_waits_the_rest_of_the_interval() -> None:
    """A task that took 0.3 s of a 1 s interval waits 0.7 s and starts with no lag."""
    clock = FakeClock()
    s = Schedule(1.0, clock=clock, rng=random.Random(0))
    clock.t += s.first_delay()
    assert s.lag_s() == 0.0
    clock.t += 0.3
    assert s.next_delay() == pytest.approx(0.7)
    clock.t += 0.7
    assert s.lag_s() == pytest.approx(0.0)


def test_after_a_stall_the_user_catches_up_without_skipping() -> None:
    """After a 2.5 s stall the next tasks start at once, each with its lag, until back on schedule."""
    clock = FakeClock()
    s = Schedule(1.0, clock=clock, rng=random.Random(0))
    clock.t += s.first_delay()
    start = clock.t
    clock.t += 2.5  # the request hung
    lags = []
    for _ in range(4):
        delay = s.next_delay()
        clock.t += delay
        lags.append(round(s.lag_s(), 6))
        clock.t += 0.01
    assert lags == [1.5, 0.51, 0.0, 0.0]
    assert clock.t - start == pytest.approx(4.01, abs=0.02)


def test_lag_is_fixed_at_the_first_request_of_a_task() -> None:
    """All requests of one task carry the same lag, measured when the task began."""
    clock = FakeClock()
    s = Schedule(1.0, clock=clock, rng=random.Random(0))
    clock.t += s.first_delay() + 3.0
    s.next_delay()
    first = s.lag_s()
    clock.t += 0.4
    assert s.lag_s() == first == pytest.approx(2.0)


def test_unpaced_schedule_is_a_closed_loop() -> None:
    """Interval 0 never waits and never reports lag."""
    s = Schedule(0.0, clock=FakeClock())
    assert s.first_delay() == 0.0 and s.next_delay() == 0.0 and s.lag_s() == 0.0


def test_random_phase_spreads_users() -> None:
    """Users started together get different phases within one interval."""
    phases = {
        round(Schedule(2.0, clock=FakeClock(), rng=random.Random(i)).first_delay(), 3) for i in range(20)
    }
    assert len(phases) == 20 and all(0 <= p < 2.0 for p in phases)


def test_negative_interval_is_refused() -> None:
    with pytest.raises(ValueError):
        Schedule(-1)

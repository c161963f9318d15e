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


class TestServiceAndGeneratorLag:
    """Lateness the service caused is service lag; lateness of the load generator itself is not."""

    def start(self) -> tuple[FakeClock, Schedule]:
        clock = FakeClock()
        s = Schedule(1.0, clock=clock, rng=random.Random(0))
        clock.t += s.first_delay()
        assert (s.lag_s(), s.generator_lag_s()) == (0.0, 0.0)  # the first task's first request
        return clock, s

    def test_on_time(self) -> None:
        """A task that took 0.2 s, and a user woken on time: no lag of either kind."""
        clock, s = self.start()
        clock.t += 0.2
        clock.t += s.next_delay()
        assert (s.lag_s(), s.generator_lag_s()) == (pytest.approx(0.0), pytest.approx(0.0))

    def test_woke_late_after_sleeping_is_all_generator_lag(self) -> None:
        """The user slept 0.8 s but ran 0.3 s after it was due: the generator was late, not the service."""
        clock, s = self.start()
        clock.t += 0.2
        clock.t += s.next_delay() + 0.3
        assert s.lag_s() == pytest.approx(0.0)
        assert s.generator_lag_s() == pytest.approx(0.3)

    def test_previous_task_overran_is_service_lag(self) -> None:
        """A task that took 1.4 s of a 1 s interval makes the next one 0.4 s late: the service's doing."""
        clock, s = self.start()
        clock.t += 1.4
        assert s.next_delay() == 0.0
        assert s.lag_s() == pytest.approx(0.4)
        assert s.generator_lag_s() == pytest.approx(0.0)

    def test_both(self) -> None:
        """Overran by 0.4 s, then the greenlet resumed 0.25 s after the task ended: each lag its part."""
        clock, s = self.start()
        clock.t += 1.4
        s.next_delay()
        clock.t += 0.25
        assert s.lag_s() == pytest.approx(0.4)
        assert s.generator_lag_s() == pytest.approx(0.25)

    def test_catching_up_after_a_generator_stall_stays_generator_lag(self) -> None:
        """After the generator lost 3.5 s, the tasks run back to back are late because of it, not the service.

        (Taking the end of the previous task as when the user was free would charge them to the service.)
        """
        clock, s = self.start()
        clock.t += 0.01  # a fast request
        clock.t += s.next_delay() + 2.5  # due in 0.99 s, but the greenlet ran 2.5 s late
        lags = []
        for _ in range(4):
            lags.append((round(s.lag_s(), 6), round(s.generator_lag_s(), 6)))
            clock.t += 0.01
            clock.t += s.next_delay()
        assert lags == [(0.0, 2.5), (0.0, 1.51), (0.0, 0.52), (0.0, 0.0)]

    def test_a_service_stall_then_a_generator_stall(self) -> None:
        """A 2.5 s request, then 0.3 s of generator delay before the catch-up task: 1.5 s and 0.3 s."""
        clock, s = self.start()
        clock.t += 2.5
        assert s.next_delay() == 0.0
        clock.t += 0.3
        assert s.lag_s() == pytest.approx(1.5)
        assert s.generator_lag_s() == pytest.approx(0.3)
        clock.t += 0.01
        s.next_delay()
        # Due at +2 s; punctually it would have started at +2.51 s (the 2.5 s task, then 0.01 s): 0.51 s
        # is the service's, the rest (it started at +2.81 s) the generator's.
        assert s.lag_s() == pytest.approx(0.51)
        assert s.generator_lag_s() == pytest.approx(0.3)

    def test_unpaced_has_no_generator_lag(self) -> None:
        """A closed loop has no schedule to be late for."""
        clock = FakeClock()
        s = Schedule(0.0, clock=clock)
        s.first_delay()
        clock.t += 5
        s.next_delay()
        assert (s.lag_s(), s.generator_lag_s()) == (0.0, 0.0)

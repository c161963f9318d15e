"""The event-loop watcher: which time the load generator's loop ran nothing, and what a schedule makes of it."""

from __future__ import annotations

import random

import pytest

from harness.load.pacing import Schedule
from harness.load.stalls import HORIZON_S, LoopWatch
from tests.load.test_pacing import FakeClock


def ticking(clock: FakeClock, watch: LoopWatch, seconds: float) -> None:
    """The watcher's greenlet, woken on time for `seconds`; ends at the moment the next tick is due."""
    end = clock.t + seconds
    while clock.t < end:
        clock.t += watch.tick()


def steady() -> tuple[FakeClock, LoopWatch]:
    """A watcher (10 ms ticks, 20 ms slack) that has ticked on time for a second: its next tick is due now."""
    clock = FakeClock()
    watch = LoopWatch(tick_s=0.01, slack_s=0.02, clock=clock)
    ticking(clock, watch, 1.0)
    return clock, watch


def test_a_late_wake_up_is_a_stall_and_jitter_is_not() -> None:
    """Waking 5 ms late is ordinary; waking 300 ms late records a 300 ms stall from when it was due."""
    clock, watch = steady()
    clock.t += 0.005
    watch.tick()
    assert watch.stalls == []
    due = clock.t + 0.01
    clock.t = due + 0.3
    watch.tick()
    assert watch.stalls == [(pytest.approx(due), pytest.approx(due + 0.3))]


def test_stalled_time_is_the_overlap_with_the_interval_asked() -> None:
    clock, watch = steady()
    due = clock.t
    clock.t = due + 0.3
    watch.tick()
    assert watch.stalled_s(due - 1, due + 1) == pytest.approx(0.3)
    assert watch.stalled_s(due + 0.1, due + 1) == pytest.approx(0.2)
    assert watch.stalled_s(due - 1, due) == 0.0


def test_a_stall_still_going_on_counts_before_the_watcher_runs() -> None:
    """A user the loop runs first after a stall already sees it, though the watcher has not ticked yet."""
    clock, watch = steady()
    due = clock.t
    clock.t = due + 0.5
    assert watch.stalled_s(due - 1, clock.t) == pytest.approx(0.5)
    clock.t += 0.001
    watch.tick()
    assert watch.stalled_s(due - 1, clock.t) == pytest.approx(0.501), "recorded once, not twice"


def test_old_stalls_are_forgotten() -> None:
    clock = FakeClock()
    watch = LoopWatch(tick_s=1.0, slack_s=0.02, clock=clock)
    watch.tick()
    clock.t += 2.5
    watch.tick()
    assert len(watch.stalls) == 1
    clock.t += HORIZON_S + 10
    watch.tick()
    assert len(watch.stalls) == 1, "the old stall is gone; the new late tick is the one left"
    assert watch.stalls[0][1] == clock.t


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        LoopWatch(tick_s=0)


def test_a_request_in_flight_during_a_loop_stall_is_not_charged_to_the_service() -> None:
    """The service answered in 5 ms but the loop stalled 0.3 s before reading it: the next tasks are
    late because of the generator. Without the watcher, the schedule charges that lateness to the service."""
    lags = {}
    for watched in (False, True):
        clock = FakeClock()
        watch = LoopWatch(tick_s=0.01, slack_s=0.02, clock=clock)
        s = Schedule(0.1, clock=clock, rng=random.Random(0), stalled=watch.stalled_s if watched else None)
        clock.t += s.first_delay()
        s.lag_s()
        ticking(clock, watch, 0.05)  # the request is in flight, the loop runs
        clock.t += 0.3  # the loop stalls: no greenlet runs, the answer waits to be read
        delay = s.next_delay()  # the user runs before the watcher
        assert delay == 0.0
        lags[watched] = (s.lag_s(), s.generator_lag_s())
    assert lags[False][0] == pytest.approx(0.25, abs=0.011)
    service, generator = lags[True]
    assert service == 0.0
    assert generator == pytest.approx(0.25, abs=0.011)


def test_a_watcher_started_late_records_no_stall() -> None:
    """The greenlet may first run a while after the watch is made: that is not a stall."""
    clock = FakeClock()
    watch = LoopWatch(tick_s=0.01, slack_s=0.02, clock=clock)
    clock.t += 5.0
    assert watch.stalled_s(clock.t - 10, clock.t) == 0.0
    ticking(clock, watch, 1.0)
    assert watch.stalls == []

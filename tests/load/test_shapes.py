"""Load profiles: users over time for constant, step, spike and diurnal shapes."""

from __future__ import annotations

import pytest

from harness.load.shapes import Profile, ShapeKind


@pytest.mark.parametrize(
    ("profile", "expected"),
    [
        (Profile(ShapeKind.CONSTANT, 10, 60), {0: 10, 30: 10, 59.9: 10, 60: None}),
        (Profile(ShapeKind.STEP, 40, 80, steps=4), {0: 10, 19.9: 10, 20: 20, 45: 30, 79: 40, 80: None}),
        (Profile(ShapeKind.SPIKE, 10, 100, spike_factor=3), {0: 10, 39.9: 10, 40: 30, 59.9: 30, 60: 10}),
        (Profile(ShapeKind.DIURNAL, 100, 120, period_s=60, trough=0.2), {0: 20, 15: 60, 30: 100, 60: 20}),
    ],
)
def test_users_over_time(profile: Profile, expected: dict[float, int | None]) -> None:
    """Each shape gives the documented number of users at each moment, and stops at its duration."""
    assert {t: profile.users_at(t) for t in expected} == expected


def test_tick_spawns_fast_enough_to_follow_the_shape() -> None:
    """The spawn rate reaches the spike's peak within about a second."""
    users, rate = Profile(ShapeKind.SPIKE, 10, 100, spike_factor=3).tick(50)
    assert users == 30 and rate >= 30
    assert Profile(ShapeKind.CONSTANT, 5, 10).tick(10) is None

"""Load profiles over time: how many users should run at second t (pure).

`loadtests/shapes.py` adapts these to Locust's LoadTestShape. Each profile returns
(users, spawn_rate) while the test should run and None when it should stop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum


class ShapeKind(StrEnum):
    CONSTANT = "constant"
    STEP = "step"
    SPIKE = "spike"
    DIURNAL = "diurnal"


@dataclass(frozen=True)
class Profile:
    kind: ShapeKind
    users: int
    duration_s: float
    steps: int = 4
    """step: the number of equal increments up to `users`."""
    spike_factor: float = 3.0
    """spike: users during the spike, as a multiple of the base."""
    spike_at: float = 0.4
    spike_width: float = 0.2
    """spike: start and width as fractions of the duration."""
    period_s: float = 60.0
    """diurnal: one 'day' compressed into this many seconds."""
    trough: float = 0.2
    """diurnal: users at night as a fraction of the peak."""

    def users_at(self, t: float) -> int | None:
        """Target users t seconds into the test; None once it is over."""
        if t >= self.duration_s:
            return None
        match self.kind:
            case ShapeKind.CONSTANT:
                return self.users
            case ShapeKind.STEP:
                step = min(self.steps, math.floor(t / self.duration_s * self.steps) + 1)
                return max(1, round(self.users * step / self.steps))
            case ShapeKind.SPIKE:
                start = self.spike_at * self.duration_s
                in_spike = start <= t < start + self.spike_width * self.duration_s
                return round(self.users * self.spike_factor) if in_spike else self.users
            case ShapeKind.DIURNAL:
                level = self.trough + (1 - self.trough) * (1 - math.cos(2 * math.pi * t / self.period_s)) / 2
                return max(1, round(self.users * level))
        raise AssertionError(self.kind)  # pragma: no cover

    def tick(self, t: float) -> tuple[int, float] | None:
        """(users, spawn_rate) for Locust: reach any new level within about a second."""
        users = self.users_at(t)
        if users is None:
            return None
        peak = round(self.users * max(1.0, self.spike_factor if self.kind is ShapeKind.SPIKE else 1.0))
        return users, float(max(1, peak))

"""A share of the engine's time for a check whose cost grows with the run.

While it watches for recovery, the engine re-reads and re-scores the scenario's whole timeline.
That costs milliseconds for a few minutes of load, but a soak scenario's timeline grows for
hours (an hour of 5 request names is 17 MB, 0.15 s to read; of 20 names 75 MB, 0.31 s: see
docs/performance.md), and a check every second would then take a growing share of the cores
the load generator needs. `CheckBudget` spaces the checks so that they take at most `share` of the time: after a
check that took c seconds, the next is due c / share seconds after it began (and never sooner
than `min_interval_s`). The scores do not change, only how soon after recovery the engine stops
observing: the window ends where the engine decided (the `observed` marker).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class CheckBudget:
    """When a costly check may run again, from what the last one cost."""

    def __init__(
        self, share: float, min_interval_s: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0 < share <= 1:
            raise ValueError(f"share must be in (0, 1], got {share}")
        self.share = share
        self.min_interval_s = min_interval_s
        self.clock = clock
        self.next_t = float("-inf")

    def due(self) -> bool:
        return self.clock() >= self.next_t

    @contextmanager
    def spend(self) -> Iterator[None]:
        """Time the check in the block (however it ends) and set when the next one is due."""
        began = self.clock()
        try:
            yield
        finally:
            cost = self.clock() - began
            self.next_t = began + max(self.min_interval_s, cost / self.share)

"""Ctrl-C and SIGTERM during a run: stop cleanly, roll back, keep what was measured, exit 3.

Outside Chaos Toolkit's run (warm-up, baseline, observation), SIGTERM raises `Interrupted`
in the main thread, as Ctrl-C raises KeyboardInterrupt. Inside it, chaoslib installs its
own handlers, stops the method and runs the rollbacks, and returns a journal marked
"interrupted"; the engine then raises `Interrupted` itself. Either way the scenario's
`finally` stops the load, and the run writes its partial result.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from harness.errors import HarnessError


class Interrupted(HarnessError):
    """The run was stopped by Ctrl-C or SIGTERM; partial results were written."""

    exit_code = 3


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(f"stopped by {signal.Signals(signum).name}")


@contextmanager
def open_signal_handlers() -> Iterator[None]:
    """SIGTERM raises Interrupted for the duration; the previous handler comes back after."""
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

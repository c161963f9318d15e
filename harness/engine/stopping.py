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


_received: list[str] = []
"""Signals received while the handlers were open: the raise may land inside code that catches
HarnessError (Interrupted is one, for its exit code), so the engine also checks this at its
own safe points (`check`)."""


def _raise(signum: int, _frame: FrameType | None) -> None:
    name = signal.Signals(signum).name
    _received.append(name)
    raise Interrupted(f"stopped by {name}")


def check() -> None:
    """Raise Interrupted if SIGTERM came while the handlers were open, even if its first raise was
    swallowed by a handler for HarnessError on the way (reading a half-written file, say)."""
    if _received:
        raise Interrupted(f"stopped by {_received[0]}")


@contextmanager
def open_signal_handlers() -> Iterator[None]:
    """SIGTERM raises Interrupted for the duration; the previous handler comes back after."""
    _received.clear()
    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        _received.clear()

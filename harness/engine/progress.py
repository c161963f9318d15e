"""Live progress of a run: a status line on a terminal, plain lines otherwise (CI logs)."""

from __future__ import annotations

import sys
import time

from rich.console import Console

from harness.timeline import Series


class Progress:
    def __init__(self, quiet: bool = False, stream=None) -> None:  # type: ignore[no-untyped-def]
        self.console = Console(file=stream or sys.stderr, soft_wrap=True, markup=False)
        self.live = self.console.is_terminal and not quiet
        self.quiet = quiet
        self.scenario = ""
        self.phase = ""
        self.phase_started = time.monotonic()
        self._status = None
        self._last_plain = 0.0

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False)

    def begin(self, scenario: str) -> None:
        self.scenario = scenario
        if self.live and self._status is None:
            self._status = self.console.status(f"{scenario}: starting")
            self._status.start()

    def enter(self, phase: str) -> None:
        self.phase = phase
        self.phase_started = time.monotonic()
        if not self.live:
            self.say(f"{self.scenario}: {phase}")

    def tick(self, series: Series | None) -> None:
        """Refresh with the last five seconds of load (closed buckets): requests/s, error rate, p95."""
        elapsed = time.monotonic() - self.phase_started
        text = f"{self.scenario}: {self.phase} {elapsed:4.0f} s"
        if series is not None and len(series):
            now = time.time()
            recent = series.window(now - 5.0, now - series.bucket_s + 1e-6)
            if recent.requests:
                p95 = recent.latency_corrected_ms["p95"]
                text += (
                    f"  {recent.requests / 5:6.1f} req/s  errors {100 * recent.failures / recent.requests:5.1f} %"
                    f"  p95 {p95 or 0:7.1f} ms"
                )
        if self._status is not None:
            self._status.update(text)
        elif not self.quiet and time.monotonic() - self._last_plain >= 10:
            self._last_plain = time.monotonic()
            self.say(text)

    def end(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

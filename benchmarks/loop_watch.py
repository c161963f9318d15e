"""What the loop watcher costs a Locust process that has nothing else to do (an upper bound).

    .venv/bin/python benchmarks/loop_watch.py [--seconds 4] [--rounds 3]

A gevent process's CPU time per second of wall time (resource.getrusage), interleaved per round:
the loop alone, the loop with a bare `gevent.sleep(0.01)` greenlet, and the loop with the
harness's LoopWatch greenlet (harness.load.users starts one per Locust process).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
from pathlib import Path

import gevent

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.load.stalls import DEFAULT_TICK_S, LoopWatch


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _bare() -> None:
    while True:
        gevent.sleep(DEFAULT_TICK_S)


def _watched() -> None:
    watch = LoopWatch()
    while True:
        gevent.sleep(watch.tick())


def cpu_ms_per_s(body: object, seconds: float) -> float:
    """CPU ms per wall second of this process while `body` (a greenlet function, or None) runs."""
    greenlet = gevent.spawn(body) if callable(body) else None
    start = _cpu_s()
    gevent.sleep(seconds)
    used = _cpu_s() - start
    if greenlet is not None:
        greenlet.kill()
    return 1000 * used / seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    variants = {"idle loop": None, "bare 10 ms sleep loop": _bare, "LoopWatch": _watched}
    runs: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, body in variants.items():
            runs[name].append(cpu_ms_per_s(body, args.seconds))
    print("| variant | CPU ms per s (median) | rounds |")
    print("| --- | ---: | --- |")
    for name, values in runs.items():
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")


if __name__ == "__main__":
    main()

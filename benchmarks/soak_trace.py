"""`python -m harness` with tracemalloc snapshots dumped every few minutes, for `soak.py --tracemalloc`.

    python -X tracemalloc=5 benchmarks/soak_trace.py SNAPSHOT_DIR EVERY_S run PLAN ...

Kept out of the harness: only the soak wants it, and tracing slows every allocation. A daemon
thread dumps `SNAPSHOT_DIR/NNN.tracemalloc` every EVERY_S seconds and once more at exit (the
engine's state may be freed by then, so soak.py diffs the periodic ones it chooses).
"""

from __future__ import annotations

import atexit
import runpy
import sys
import threading
import time
import tracemalloc
from pathlib import Path


def dump(folder: Path, count: list[int]) -> None:
    """Write the next numbered snapshot; numbered, not timed, so the order is the file order."""
    snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
    snapshot.dump(str(folder / f"{count[0]:03d}.tracemalloc"))
    count[0] += 1


def main() -> None:
    folder, every_s = Path(sys.argv[1]), float(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    if not tracemalloc.is_tracing():
        tracemalloc.start(5)
    count = [0]
    lock = threading.Lock()

    def dump_locked() -> None:
        with lock:
            dump(folder, count)

    def every() -> None:
        while True:
            time.sleep(every_s)
            dump_locked()

    threading.Thread(target=every, name="soak-tracemalloc", daemon=True).start()
    atexit.register(dump_locked)
    sys.argv = ["harness", *sys.argv[3:]]
    runpy.run_module("harness", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()

"""The recorder's own cost per request, in-process: the request listener and the per-tick fold.

    .venv/bin/python benchmarks/recorder_hot_path.py [--requests 200000]

Complements load_path.py, whose end-to-end comparison includes everything that changes in a
Locust process when the recorder is loaded (imports, threads), not only the recorder's code.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness.load.recorder import Recorder


def one_round(n: int) -> tuple[float, float]:
    env = SimpleNamespace(runner=SimpleNamespace(user_count=10), host="http://127.0.0.1", parsed_options=None)
    rec = Recorder(env, os.devnull, 1.0)
    now = time.time()
    t0 = time.perf_counter()
    for i in range(n):
        rec.on_request(
            "GET",
            "/v1/catalog",
            1.5 + (i % 97) * 0.1,
            None,
            {"lag_s": 0.0, "gen_lag_s": 0.0},
            None,
            now + i * 1e-4,
        )
    t1 = time.perf_counter()
    rec._fold()
    t2 = time.perf_counter()
    return (t1 - t0) / n * 1e6, (t2 - t1) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rounds = [one_round(args.requests) for _ in range(args.rounds)]
    listener = statistics.median(r[0] for r in rounds)
    fold = statistics.median(r[1] for r in rounds)
    print("| recorder step | median µs per request | rounds |")
    print("| --- | ---: | --- |")
    print(f"| request listener | {listener:.2f} | {', '.join(f'{r[0]:.2f}' for r in rounds)} |")
    print(f"| fold (per tick, numpy) | {fold:.2f} | {', '.join(f'{r[1]:.2f}' for r in rounds)} |")
    print(f"| total | {listener + fold:.2f} | |")


if __name__ == "__main__":
    main()

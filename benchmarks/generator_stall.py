"""Corrected latency when the load generator's own event loop stalls, not the service.

    .venv/bin/python benchmarks/generator_stall.py [--runs 4] [--stall-s 0.3]

Each run: 20 paced users (0.1 s) in one real Locust process against a loopback server that
answers at once; the loop is blocked by a busy loop for --stall-s, 4.5 s in (the test suite's
stalling locustfile). For the 1 s buckets around the block it prints the corrected p99 had all
lag been the service's, the recorder's corrected p99 (service lag only), Locust's own p99,
and the generator-lateness columns. All traffic goes to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harness.load.process import LoadSpec, run_load  # noqa: E402
from harness.timeline import read_timeline  # noqa: E402
from tests.load.test_locust_timeline import STALLING_LOCUSTFILE, _p99_by_bucket, open_fast_service  # noqa: E402


def one_run(work: Path, stall_s: float) -> list[str]:
    samples = work / "samples.json"
    with open_fast_service() as url:
        spec = LoadSpec(STALLING_LOCUSTFILE, url, users=20, spawn_rate=20, run_time_s=8, bucket_s=1.0,
                        pacing_s=0.1, extra_args=["--stall-at", "4.5", "--stall-s", str(stall_s),
                                                  "--samples", str(samples)])  # fmt: skip
        result = run_load(spec, work / "run")
    data = json.loads(samples.read_text())
    start, end = data["stall"]["start"], data["stall"]["end"]
    t, response_ms, lag_s, gen_lag_s = np.array(data["samples"], dtype=np.float64).T
    all_lag = _p99_by_bucket(t - lag_s - gen_lag_s, response_ms + 1000 * (lag_s + gen_lag_s), 1.0)
    timeline = read_timeline(result.timeline)
    rows = []
    for b in sorted(x for x in all_lag if x < end and x + 1.0 > start):
        w = timeline.window(b, b + 1.0)
        rows.append(f"{all_lag[b]:.0f} | {w.percentiles_ms(corrected=True)['p99']:.1f} | "
                    f"{w.percentiles_ms()['p99']:.1f} | {w.gen_late} | {w.gen_lag_max_ms:.0f}")  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--stall-s", type=float, default=0.3)
    args = parser.parse_args()
    print(
        "| run | all lag as service: p99 ms | corrected p99 ms | Locust's own p99 ms | gen_late | gen_lag_max_ms |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="harness-stall-") as work:
            for row in one_run(Path(work), args.stall_s):
                print(f"| {run} | {row} |")


if __name__ == "__main__":
    main()

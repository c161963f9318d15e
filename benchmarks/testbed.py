"""Benchmark the testbed: `up` and `down` times, and throughput through its load path.

    .venv/bin/python benchmarks/testbed.py [--rounds 3] [--seconds 8]

For each round: bring a managed testbed up (timed), drive the reference service's read
mix with Locust (1 process, 40 users, closed loop) at one replica directly, at the same
replica through its node's fault proxy, and at the load balancer (HAProxy → proxies → all
replicas), then take it down (timed). Prints a Markdown table; all traffic is on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from benchmarks.load_path import machine, run_locust  # noqa: E402
from harness.app.launcher import free_port  # noqa: E402
from harness.testbed import cluster, faults, profiles  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-bench-testbed-"))
    ups, downs = [], []
    rps: dict[str, list[float]] = {
        "direct to one replica": [],
        "through its node's proxy": [],
        "load balancer": [],
    }
    try:
        for r in range(args.rounds):
            root = work / f"tb{r}"
            t0 = time.monotonic()
            state = cluster.up(profiles.builtin("managed"), root, lb_port=free_port())
            ups.append(time.monotonic() - t0)
            _, info = sorted(faults.replicas(root).items())[0]
            targets = {
                "direct to one replica": f"http://127.0.0.1:{info['port']}",
                "through its node's proxy": f"http://127.0.0.1:{info['proxy_port']}",
                "load balancer": state.lb_url,
            }
            for label, url in targets.items():
                res = run_locust(
                    HERE / "locust_service.py", url, 40, args.seconds, work / f"{r}-{len(rps[label])}", {}, []
                )
                rps[label].append(res["rps"])
                print(
                    f"  round {r + 1} {label:26s} {res['rps']:7.0f} req/s ({res['failures']} failures)",
                    file=sys.stderr,
                )
            t0 = time.monotonic()
            cluster.down(root)
            downs.append(time.monotonic() - t0)
            print(f"  round {r + 1} up {ups[-1]:.1f} s, down {downs[-1]:.1f} s", file=sys.stderr)
    finally:
        for root in work.glob("tb*"):
            cluster.down(root)
        shutil.rmtree(work, ignore_errors=True)
    print(f"Machine: {machine()}\n")
    print("| testbed (managed) | median | runs |")
    print("| --- | ---: | --- |")
    print(f"| `up` | {statistics.median(ups):.1f} s | {', '.join(f'{v:.1f}' for v in ups)} |")
    print(f"| `down` | {statistics.median(downs):.1f} s | {', '.join(f'{v:.1f}' for v in downs)} |")
    print("\n| reference service read mix via | median req/s | runs |")
    print("| --- | ---: | --- |")
    for label, values in rps.items():
        print(f"| {label} | {statistics.median(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")


if __name__ == "__main__":
    main()

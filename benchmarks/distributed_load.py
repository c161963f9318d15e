"""Benchmark load from N Locust workers against one Locust process, on a fixed fast endpoint.

    .venv/bin/python benchmarks/distributed_load.py [--workers 2] [--rounds 3] [--seconds 15]

Both variants run the harness's own way (harness.load.process, the timeline recorder on):
"1 process" is one local Locust with U users; "N workers" is Locust's master with N worker
processes (the command `harness load worker` runs), N x U users, each worker carrying what
the one process carried. The endpoint is HAProxy answering `200 ok` itself on 127.0.0.1
(as in load_path.py), closed loop, FastHttpUser (benchmarks/locust_fast.py). Variants run
interleaved, each round in the same order; medians are reported with every round listed.

Measured per run, in the steady state (buckets at full users, the first 3 s and the last 2 s
left out), from the timeline's exact per-bucket counts:
- requests/s, and its ratio to the one process's (the target: ≥ 0.9 x N);
- CPU seconds of every Locust process (master and workers, from /proc) per request, and
  requests per CPU-second: throughput normalised by the CPU the load generator got. On a
  machine with fewer free cores than workers, requests/s cannot scale by N, but requests per
  CPU-second shows whether distributing the load costs anything per request; the workers'
  share alone (without the master, which merges and needs a core of its own) says what N
  workers with a core each would make;
- totals: the timeline's requests and failures against Locust's own final totals (must be equal).

Results: a Markdown table on stdout and JSON in benchmarks/results/distributed_load_w<N>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from load_path import _cpu_s, machine, start_fast_haproxy  # noqa: E402

from harness import children  # noqa: E402
from harness.app.launcher import free_port  # noqa: E402
from harness.load import process  # noqa: E402
from harness.timeline import read_timeline  # noqa: E402

LOCUSTFILE = HERE / "locust_fast.py"
USERS_PER_PROCESS = 10
"""As in load_path.py: enough for one Locust process to saturate its core on this endpoint."""
SKIP_START_S, SKIP_END_S = 3.0, 2.0


def _group_cpu_s(pids: list[int]) -> float:
    return sum(c for c in (_cpu_s(pid) for pid in pids) if c is not None)


def _steady(timeline_path: Path, users: int) -> tuple[float, float, int]:
    """(start, end, requests) over the buckets at full users, edges left out."""
    timeline = read_timeline(timeline_path)
    dt = timeline.bucket_s
    full = sorted(tick["t"] for tick in timeline.ticks.values() if tick.get("users") == users)
    if not full:
        raise RuntimeError(f"{timeline_path}: no bucket ran at {users} users")
    start, end = full[0] + SKIP_START_S, full[-1] + dt - SKIP_END_S
    return start, end, timeline.window(start, end).requests


def run_variant(workers: int, host: str, seconds: int, out: Path) -> dict:
    """One run: 1 process (workers = 0) or a master with `workers` worker processes."""
    users = USERS_PER_PROCESS * max(1, workers)
    port = free_port()
    spec = process.LoadSpec(
        LOCUSTFILE, host, users=users, spawn_rate=users, run_time_s=seconds, bucket_s=1.0,
        workers=workers, master_bind=("127.0.0.1", port), join_timeout_s=60,
    )  # fmt: skip
    env = {**os.environ, "BENCH_RECORDER": "recorder", "PYTHONUNBUFFERED": "1"}
    out.mkdir(parents=True, exist_ok=True)
    worker_procs: list[subprocess.Popen] = []
    samples: list[tuple[float, float, float]] = []
    """(t, CPU seconds of the master or the one process, CPU seconds of the workers)."""
    try:
        with (out / "workers.log").open("wb") as wlog:
            for _ in range(workers):
                worker_procs.append(
                    subprocess.Popen(
                        process.worker_command(LOCUSTFILE, ("127.0.0.1", port)),
                        stdout=wlog,
                        stderr=subprocess.STDOUT,
                        env=env,
                        start_new_session=True,
                    )
                )
            os.environ["BENCH_RECORDER"] = "recorder"  # the master (open_load passes the environment on)
            with process.open_load(spec, out) as (master, result):
                worker_pids = [w.pid for w in worker_procs]
                deadline = time.monotonic() + seconds + 60
                while master.poll() is None and time.monotonic() < deadline:
                    samples.append((time.time(), _group_cpu_s([master.pid]), _group_cpu_s(worker_pids)))
                    time.sleep(0.5)
    finally:
        for w in worker_procs:
            children.stop_group(w, grace_s=10, leader_only=True)
    start, end, requests = _steady(result.timeline, users)
    in_window = [s for s in samples if start <= s[0] <= end]
    if len(in_window) < 2:
        raise RuntimeError(f"{out}: too few CPU samples in the steady state")
    (t0, m0, w0), (t1, m1, w1) = in_window[0], in_window[-1]
    span_s, master_cpu_s, workers_cpu_s = t1 - t0, m1 - m0, w1 - w0
    cpu_s = master_cpu_s + workers_cpu_s
    # Requests in the sampled span (the timeline's rate over the window, times the span).
    span_requests = requests * span_s / (end - start)
    total = read_timeline(result.timeline).total()
    locust = process.read_locust_totals(result.stats_json)
    return {
        "workers": workers,
        "users": users,
        # The machine's 1-minute load average as the run ended: other work competing for the cores.
        "loadavg_1m": float(Path("/proc/loadavg").read_text().split()[0]),
        "rps": requests / (end - start),
        # CPU the Locust processes got in the window, per request and per second of it.
        "cpu_us_per_request": 1e6 * cpu_s / span_requests,
        # The workers' share alone (N workers), or the one process's: the part that makes requests.
        "generator_cpu_us_per_request": 1e6 * (workers_cpu_s if workers else master_cpu_s) / span_requests,
        "master_cores": master_cpu_s / span_s if workers else 0.0,
        "cores_used": cpu_s / span_s,
        "requests_per_cpu_s": span_requests / cpu_s,
        "timeline_totals": [total.requests, total.failures],
        "locust_totals": [locust.requests, locust.failures],
        "totals_equal": (total.requests, total.failures) == (locust.requests, locust.failures),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-bench-dist-"))
    proxy, port = start_fast_haproxy(work)
    labels = {0: "1 process", args.workers: f"{args.workers} worker{'s' if args.workers > 1 else ''}"}
    runs: dict[str, list[dict]] = {label: [] for label in labels.values()}
    try:
        time.sleep(0.5)
        for r in range(args.rounds):
            for workers, label in labels.items():
                res = run_variant(workers, f"http://127.0.0.1:{port}", args.seconds, work / f"{workers}-{r}")
                runs[label].append(res)
                print(
                    f"  round {r + 1} {label:10s} {res['rps']:7.0f} req/s {res['cpu_us_per_request']:6.1f} µs CPU/req "
                    f"{res['cores_used']:.2f} cores, totals {res['timeline_totals']} vs Locust {res['locust_totals']}, "
                    f"load average {res['loadavg_1m']:.1f}",
                    file=sys.stderr,
                )  # fmt: skip
    finally:
        children.stop_group(proxy, grace_s=5)
        shutil.rmtree(work, ignore_errors=True)
    one, many = runs["1 process"], runs[labels[args.workers]]
    report = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "workers": args.workers,
        "runs": runs,
        # Each round's two variants ran back to back: their ratio cancels most of the drift.
        "rps_ratio_by_round": [m["rps"] / o["rps"] for m, o in zip(many, one, strict=True)],
        "per_cpu_ratio_by_round": [
            m["requests_per_cpu_s"] / o["requests_per_cpu_s"] for m, o in zip(many, one, strict=True)
        ],
        # Requests per CPU-second of the processes that make requests (workers, or the one process).
        "generator_per_cpu_ratio_by_round": [
            o["generator_cpu_us_per_request"] / m["generator_cpu_us_per_request"]
            for m, o in zip(many, one, strict=True)
        ],
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"distributed_load_w{args.workers}.json").write_text(json.dumps(report, indent=2))
    print(f"Machine: {report['machine']}\n")
    print("| load generator | req/s (median) | rounds | cores used (median) | of which the master | CPU µs/req, all (median) | CPU µs/req, request makers (median) | requests per CPU-s (median) | totals = Locust's |")  # fmt: skip
    print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for label, values in runs.items():
        print(
            f"| {label} | {statistics.median(v['rps'] for v in values):.0f} "
            f"| {', '.join(f'{v["rps"]:.0f}' for v in values)} "
            f"| {statistics.median(v['cores_used'] for v in values):.2f} "
            f"| {statistics.median(v['master_cores'] for v in values):.2f} "
            f"| {statistics.median(v['cpu_us_per_request'] for v in values):.1f} "
            f"| {statistics.median(v['generator_cpu_us_per_request'] for v in values):.1f} "
            f"| {statistics.median(v['requests_per_cpu_s'] for v in values):.0f} "
            f"| {'yes' if all(v['totals_equal'] for v in values) else 'NO'} |"
        )
    rps_ratios, cpu_ratios = report["rps_ratio_by_round"], report["per_cpu_ratio_by_round"]
    n = args.workers
    print(
        f"\n{n} workers / 1 process, requests/s: median {statistics.median(rps_ratios):.2f} "
        f"({statistics.median(rps_ratios) / n:.2f} x N; rounds {', '.join(f'{x:.2f}' for x in rps_ratios)})"
    )
    print(
        f"{n} workers / 1 process, requests per CPU-second (master included): median "
        f"{statistics.median(cpu_ratios):.2f} (rounds {', '.join(f'{x:.2f}' for x in cpu_ratios)})"
    )
    gen_ratios = report["generator_per_cpu_ratio_by_round"]
    print(
        f"{n} workers / 1 process, requests per CPU-second of the request makers: median "
        f"{statistics.median(gen_ratios):.2f} (rounds {', '.join(f'{x:.2f}' for x in gen_ratios)})"
    )


if __name__ == "__main__":
    main()

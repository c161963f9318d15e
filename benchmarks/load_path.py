"""Benchmark the load path: recorder overhead in Locust, and the reference service's throughput.

    .venv/bin/python benchmarks/load_path.py [--rounds 3] [--seconds 10] [--skip-service]

Variants run interleaved (round-robin, each round in the same order) so drift on the
machine affects all of them alike. Results: a Markdown table on stdout and JSON in
benchmarks/results/load_path.json (load_path_recorder.json with --skip-service). All
traffic goes to 127.0.0.1.

1. Locust (1 process, 10 users, closed loop, FastHttpUser) against a fixed fast endpoint
   (HAProxy answering `200 ok` itself), with no listener, with the harness recorder, and
   with a naive per-request listener.
2. The reference service on SQLite with 1 and 2 uvicorn workers, driven by Locust
   (1 process, 40 users, closed loop) on a read mix (catalog, entitlement).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from harness import children  # noqa: E402
from harness.app.launcher import open_service  # noqa: E402
from harness.load.process import read_locust_totals  # noqa: E402
from harness.ports import free_port  # noqa: E402
from harness.timeline import read_timeline  # noqa: E402

HAPROXY_CFG = """
global
    maxconn 4096
defaults
    mode http
    timeout client 10s
    timeout connect 5s
    timeout server 10s
frontend fast
    bind 127.0.0.1:{port}
    http-request return status 200 content-type text/plain string ok
"""


def start_fast_haproxy(work: Path) -> tuple[subprocess.Popen, int]:
    """HAProxy answering 200 itself on a free loopback port (HAPROXY_CFG); stop it with
    children.stop_group."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    port = free_port()
    cfg = work / "haproxy.cfg"
    cfg.write_text(HAPROXY_CFG.format(port=port))
    proc = subprocess.Popen(
        [haproxy, "-f", str(cfg), "-db"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return proc, port


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of one process, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_per_request_us(cpu_log: Path, skip_s: float = 2.0) -> float | None:
    """CPU µs per request in the steady state, from the lines locust_fast.py's BENCH_CPU_LOG writes.

    Each line pairs the Locust process's own CPU time (getrusage, sampled inside it) with its
    own request count at the same moment, every 0.5 s and once at the stop. Start-up (imports,
    spawning users) costs the same CPU whatever listens and would blur a difference of a few
    percent: the first `skip_s` seconds of the test are left out, and the slope of CPU against
    requests is the cost per request.
    """
    try:
        rows = [tuple(map(float, line.split())) for line in cpu_log.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        return None
    if len(rows) < 2:
        return None
    steady = [r for r in rows if r[0] >= rows[0][0] + skip_s]
    if len(steady) < 3:
        steady = rows
    import numpy as np

    cpu = np.array([r[1] for r in steady])
    requests = np.array([r[2] for r in steady])
    if requests[-1] <= requests[0]:
        return None
    return 1e6 * float(np.polyfit(requests, cpu, 1)[0])


def run_locust(
    locustfile: Path, host: str, users: int, seconds: int, out: Path, env: dict[str, str], extra: list[str]
) -> dict:
    """One Locust run; requests/s, and CPU per request in the steady state (see cpu_per_request_us).

    The CPU is sampled by the Locust process itself (locust_fast.py, BENCH_CPU_LOG): reading
    /proc from here once a second and matching it to Locust's stats-history CSV, as this did
    before, left 2-3 samples in the steady window of a 10 s run (the CSV starts with the test,
    has whole-second timestamps and misses the last second), fewer than a fit needs: NaN.
    """
    out.mkdir(parents=True, exist_ok=True)
    cpu_log = out / "cpu.log"
    cmd = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--only-summary",
        "--host", host, "-u", str(users), "-r", str(users), "--run-time", f"{seconds}s",
        "--stop-timeout", "1s", "--json-file", str(out / "locust"), "--csv", str(out / "locust"),
        "--loglevel", "WARNING", *extra,
    ]  # fmt: skip
    with (out / "locust.log").open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env, "BENCH_CPU_LOG": str(cpu_log)},
            start_new_session=True,
        )
        try:
            proc.wait(seconds + 60)
        finally:
            children.stop_group(proc, grace_s=10, leader_only=True)
    totals = read_locust_totals(out / "locust.json")
    cpu_us = cpu_per_request_us(cpu_log)
    return {
        "requests": totals.requests,
        "failures": totals.failures,
        "rps": totals.requests / seconds,
        # CPU time Locust spent per request in the steady state: unlike requests/s, it does not
        # move when other work on the machine takes a core away.
        "cpu_us_per_request": cpu_us if cpu_us is not None else float("nan"),
    }


def recorder_overhead(rounds: int, seconds: int, work: Path) -> dict[str, list[float]]:
    proc, port = start_fast_haproxy(work)
    results: dict[str, list[float]] = {"none": [], "recorder": [], "naive": []}
    cpu: dict[str, list[float]] = {"none": [], "recorder": [], "naive": []}
    try:
        time.sleep(0.5)
        for r in range(rounds):
            for mode in results:
                out = work / f"fast-{mode}-{r}"
                extra = ["--timeline", str(out / "timeline.jsonl")] if mode == "recorder" else []
                res = run_locust(
                    HERE / "locust_fast.py",
                    f"http://127.0.0.1:{port}",
                    10,
                    seconds,
                    out,
                    {"BENCH_RECORDER": mode},
                    extra,
                )
                if mode == "recorder":
                    total = read_timeline(out / "timeline.jsonl").total()
                    assert total.requests == res["requests"], "recorder lost requests"
                results[mode].append(res["rps"])
                cpu[mode].append(res["cpu_us_per_request"])
                print(f"  round {r + 1} {mode:9s} {res['rps']:9.0f} req/s {res['cpu_us_per_request']:6.1f} us CPU/req",
                      file=sys.stderr)  # fmt: skip
    finally:
        children.stop_group(proc, grace_s=5)
    return results, cpu


def service_throughput(rounds: int, seconds: int, work: Path) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"1 worker": [], "2 workers": []}
    for r in range(rounds):
        for label in results:
            workers = int(label.split()[0])
            db = f"sqlite:///{work / f'svc-{workers}-{r}.db'}"
            with open_service(db, workers=workers, log_path=work / "svc.log") as svc:
                res = run_locust(
                    HERE / "locust_service.py", svc.url, 40, seconds, work / f"svc-{label}-{r}", {}, []
                )
            results[label].append(res["rps"])
            print(
                f"  round {r + 1} {label:9s} {res['rps']:9.0f} req/s ({res['failures']} failures)",
                file=sys.stderr,
            )
    return results


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--skip-service", action="store_true", help="Measure the recorder overhead only")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    try:
        print("recorder overhead (Locust against a fixed fast endpoint)", file=sys.stderr)
        overhead, cpu = recorder_overhead(args.rounds, args.seconds, work)
        service: dict[str, list[float]] = {}
        if not args.skip_service:
            print("reference service throughput (SQLite)", file=sys.stderr)
            service = service_throughput(args.rounds, args.seconds, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "rounds": args.rounds,
        "seconds": args.seconds,
        "recorder": {"requests_per_s": overhead, "cpu_us_per_request": cpu},
        "service": service,
    }
    (HERE / "results").mkdir(exist_ok=True)
    name = "load_path_recorder.json" if args.skip_service else "load_path.json"
    (HERE / "results" / name).write_text(json.dumps(report, indent=2))
    print(f"Machine: {report['machine']}\n")
    # Each round's variants ran back to back, so a round's ratio to "none" cancels most of the
    # machine's drift; the median of those paired ratios is the overhead, their range its spread.
    print(
        "| Locust listener | CPU per request (median) | vs none, median of rounds | rounds' range | CPU µs runs |"
    )
    print("| --- | ---: | ---: | --- | --- |")
    for mode in overhead:
        ratios = [m / n - 1 for m, n in zip(cpu[mode], cpu["none"], strict=True)]
        runs = ", ".join(f"{v:.0f}" for v in cpu[mode])
        print(
            f"| {mode} | {statistics.median(cpu[mode]):.1f} µs | {100 * statistics.median(ratios):+.1f} % "
            f"| {100 * min(ratios):+.0f} … {100 * max(ratios):+.0f} % | {runs} |"
        )
    if not service:
        return
    print("\n| reference service (SQLite) | median req/s | runs |")
    print("| --- | ---: | --- |")
    for label, values in service.items():
        print(f"| {label} | {statistics.median(values):.0f} | {', '.join(f'{v:.0f}' for v in values)} |")


if __name__ == "__main__":
    main()

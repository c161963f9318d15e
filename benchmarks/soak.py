"""Soak: a game day of about an hour on the embedded testbed; is the harness flat over time?

    .venv/bin/python benchmarks/soak.py [--minutes 60] [--out benchmarks/results/soak.json]
                                        [--work DIR] [--tracemalloc]
    .venv/bin/python benchmarks/soak.py --resummarize benchmarks/results/soak.json

Runs `harness run` on a generated plan (the local game day's replica kill, node crash and zone
latency, each repeated until the plan lasts about the minutes asked; a scenario takes about 1.2 min)
and samples every 10 s: the harness process's resident memory
and open files, and the resident memory and process count of everything it started (Locust,
the testbed, Chaos Toolkit activities). Leaks show as a slope: it prints the first and last
ten minutes' medians and a least-squares slope per hour (scipy), and writes every sample.

To say where memory grows, each sample also holds the RSS of every process by a readable name
(harness, locust, haproxy, etcd NAME, controller, agent NODE, faultproxy NODE, app :PORT) and
the data the testbed holds (etcd's data folders, the service's SQLite files and its row counts),
so growth that is data (etcd or the database holding more) is told apart from a leak.
`--tracemalloc` runs the harness under `python -X tracemalloc=5` (benchmarks/soak_trace.py dumps
a snapshot every few minutes) and writes the top allocation growth, by file:line, between the
first snapshot after the first scenario and the last one before the run ends; tracing costs
the harness memory and time, so its RSS is not comparable with a run without it.
Traffic stays on 127.0.0.1. Not a CI test: it takes the hour it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import psutil
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_S = 10.0
TRACE_EVERY_S = 240.0
"""A tracemalloc snapshot of a 100 MB heap takes a few seconds under load: every 4 minutes is enough."""
TABLES = ("users", "subscriptions", "charges", "renewals")


def plan_text(minutes: float) -> str:
    """Three scenarios repeated to add up to about `minutes` (each took 1.2 min in the last two soaks)."""
    repeats = max(1, round(minutes / 3 / 1.2))
    experiments = ROOT / "experiments" / "local"
    return f"""name: soak
description: A game day of about {minutes:.0f} minutes, to see the harness stay flat.
target: {{kind: testbed, profile: managed}}
load:
  locustfile: {ROOT / "loadtests" / "subscriptions.py"}
  users: 20
  spawn_rate: 10
windows: {{warmup_s: 5, baseline_s: 30, observe_s: 90, stability_s: 10}}
slo: {{p95_ms: 1000}}
scenarios:
  - name: replica-kill
    experiment: {experiments / "replica-kill.yaml"}
    trials: {repeats}
  - name: node-crash
    experiment: {experiments / "node-crash.yaml"}
    trials: {repeats}
  - name: zone-latency
    experiment: {experiments / "zone-latency.yaml"}
    trials: {repeats}
gates:
  - data_loss == 0
"""


def _arg(cmdline: list[str], flag: str) -> str | None:
    return cmdline[cmdline.index(flag) + 1] if flag in cmdline[:-1] else None


def process_name(process: psutil.Process, harness_pid: int) -> str:
    """A name that stays the same across restarts of the same part (a replica keeps its port)."""
    if process.pid == harness_pid:
        return "harness"
    cmdline = process.cmdline()
    exe = Path(cmdline[0]).name if cmdline else process.name()
    if exe.startswith("haproxy"):
        return "haproxy"
    if exe.startswith("etcd"):
        return f"etcd {_arg(cmdline, '--name') or '?'}"
    module = _arg(cmdline, "-m") or ""
    if module == "locust":
        return (
            "locust worker"
            if "--worker" in cmdline
            else ("locust master" if "--master" in cmdline else "locust")
        )
    if module == "harness" and "serve" in cmdline:
        return f"app :{_arg(cmdline, '--port')}"
    if module == "harness.testbed.agent":
        return f"agent {_arg(cmdline, '--node')}"
    if module == "harness.testbed.faultproxy":
        state = _arg(cmdline, "--state-file")
        return f"faultproxy {Path(state).parent.name if state else _arg(cmdline, '--control-port')}"
    if module.startswith("harness."):
        return module.removeprefix("harness.testbed.").removeprefix("harness.")
    return " ".join([exe, module or (cmdline[1] if len(cmdline) > 1 else "")]).strip()


def testbed_data(testbed: Path) -> dict[str, float]:
    """What the testbed holds: etcd's data and the service's database (size, rows), which may grow
    legitimately as the load adds subscriptions."""
    out: dict[str, float] = {}
    for member in sorted((testbed / "etcd").glob("*")):
        db_file = member / "member" / "snap" / "db"  # the keys; the WAL is preallocated 64 MB at a time
        out[f"etcd {member.name} db_mb"] = (
            round(db_file.stat().st_size / 2**20, 2) if db_file.exists() else 0.0
        )
        wal = sum(f.stat().st_size for f in (member / "member" / "wal").glob("*") if f.is_file())
        out[f"etcd {member.name} wal_mb"] = round(wal / 2**20, 2)
    db = testbed / "service.db"
    files = [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]
    out["database_mb"] = round(sum(f.stat().st_size for f in files if f.exists()) / 2**20, 2)
    if db.exists():
        try:
            with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1.0)) as conn:
                for table in TABLES:
                    out[f"{table}_rows"] = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        except sqlite3.Error:  # busy or mid-checkpoint: the next sample counts
            pass
    return out


def sample(harness: psutil.Process, started: float, testbed: Path) -> dict[str, Any] | None:
    try:
        children = harness.children(recursive=True)
        own = harness.memory_info().rss
        files = harness.num_fds()
    except psutil.NoSuchProcess:
        return None
    tree = own
    by_name: dict[str, float] = {"harness": own}
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.ZombieProcess):
            rss = child.memory_info().rss
            name = process_name(child, harness.pid)
            tree += rss
            by_name[name] = by_name.get(name, 0) + rss
    with contextlib.suppress(OSError):  # the testbed is being built or taken down
        data = testbed_data(testbed)
    return {
        "t_s": round(time.monotonic() - started, 1),
        "harness_rss_mb": round(own / 2**20, 1),
        "harness_open_files": files,
        "tree_rss_mb": round(tree / 2**20, 1),
        "processes": len(children),
        "rss_mb": {name: round(rss / 2**20, 1) for name, rss in sorted(by_name.items())},
        "testbed": locals().get("data", {}),
        "load_1min": round(os.getloadavg()[0], 2),
    }


def trend(points: list[tuple[float, float]], end_s: float) -> dict[str, float]:
    """Median of the first and last ten minutes, the least-squares slope per hour, the max."""
    window = 600.0
    first = [v for t, v in points if t <= points[0][0] + window]
    last = [v for t, v in points if t >= end_s - window]
    slope = (
        stats.linregress(*zip(*points, strict=True)).slope * 3600 if len({t for t, _ in points}) > 1 else 0.0
    )
    return {
        "first_10_min": statistics.median(first),
        "last_10_min": statistics.median(last) if last else float("nan"),
        "slope_per_hour": round(slope, 2),
        "max": max(v for _, v in points),
        "samples": len(points),
    }


def summary(samples: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Per measure, per process name and per testbed datum: trend(); a process that was not running
    (Locust between scenarios, a replica being restarted) has no point in that sample."""
    end = samples[-1]["t_s"]
    out: dict[str, dict[str, dict[str, float]]] = {
        "measures": {},
        "rss_mb_by_kind": {},
        "rss_mb": {},
        "testbed": {},
    }
    for key in ("harness_rss_mb", "harness_open_files", "tree_rss_mb", "processes", "load_1min"):
        out["measures"][key] = trend([(s["t_s"], s[key]) for s in samples], end)
    # By kind (app, etcd, agent, ...), summed: a killed replica comes back on another port.
    kinds: dict[str, list[tuple[float, float]]] = {}
    for s in samples:
        summed: dict[str, float] = {}
        for name, rss in s.get("rss_mb", {}).items():
            summed[name.split()[0]] = summed.get(name.split()[0], 0.0) + rss
        for kind, rss in summed.items():
            kinds.setdefault(kind, []).append((s["t_s"], round(rss, 1)))
    for kind, points in sorted(kinds.items()):
        out["rss_mb_by_kind"][kind] = trend(points, end)
    for group in ("rss_mb", "testbed"):
        names = sorted({name for s in samples for name in s.get(group, {})})
        for name in names:
            points = [(s["t_s"], s[group][name]) for s in samples if name in s.get(group, {})]
            out[group][name] = trend(points, end)
    return out


def allocation_growth(folder: Path, limit: int = 25) -> dict[str, Any]:
    """Top growth by file:line between the second snapshot (after bring-up and the first scenario)
    and the last periodic one (the run still holding what it holds)."""
    snapshots = sorted(folder.glob("*.tracemalloc"))
    if len(snapshots) < 3:
        return {"snapshots": len(snapshots)}
    first, last = snapshots[1], snapshots[-2]
    old, new = tracemalloc.Snapshot.load(str(first)), tracemalloc.Snapshot.load(str(last))
    diff = new.compare_to(old, "lineno")
    traced = sum(s.size for s in new.statistics("filename")) - sum(s.size for s in old.statistics("filename"))
    return {
        "snapshots": len(snapshots),
        "between": [first.name, last.name],
        "traced_growth_mb": round(traced / 2**20, 2),
        "top": [
            {
                "where": str(stat.traceback[0]),
                "growth_kb": round(stat.size_diff / 1024, 1),
                "count_growth": stat.count_diff,
                "size_kb": round(stat.size / 1024, 1),
            }
            for stat in diff[:limit]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak.json")
    parser.add_argument("--work", type=Path, default=None, help="folder for the plan, testbed and reports")
    parser.add_argument("--tracemalloc", action="store_true", help="trace the harness's allocations")
    parser.add_argument(
        "--resummarize", type=Path, default=None, help="summarize a result file again, no run"
    )
    args = parser.parse_args()
    if args.resummarize:
        resummarize(args.resummarize)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="harness-soak-"))
    work.mkdir(parents=True, exist_ok=True)
    plan = work / "soak.yaml"
    plan.write_text(plan_text(args.minutes))
    testbed = work / "testbed"
    harness_args = ["run", str(plan), "--reports", str(work / "reports"), "--dir", str(testbed)]
    if args.tracemalloc:
        trace = [str(ROOT / "benchmarks" / "soak_trace.py"), str(work / "tracemalloc"), str(TRACE_EVERY_S)]
        command = [sys.executable, "-X", "tracemalloc=5", *trace, *harness_args]
    else:
        command = [sys.executable, "-m", "harness", *harness_args]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    started = time.monotonic()
    log = (work / "harness.log").open("w")
    run = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    harness = psutil.Process(run.pid)
    samples = []
    deadline = started + args.minutes * 60 * 2 + 900  # bounded: twice the plan, plus bring-up
    while run.poll() is None and time.monotonic() < deadline:
        if (point := sample(harness, started, testbed)) is not None:
            samples.append(point)
        time.sleep(SAMPLE_S)
    if run.poll() is None:
        run.terminate()
        run.wait(60)
    result = {
        "minutes_planned": args.minutes,
        "minutes_run": round((time.monotonic() - started) / 60, 1),
        "exit_code": run.returncode,
        "tracemalloc": args.tracemalloc,
        "run_folder": str(next((work / "reports").glob("*"), "")),
        "summary": summary(samples) if samples else {},
        "allocation_growth": allocation_growth(work / "tracemalloc") if args.tracemalloc else None,
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print_result(result)


def print_result(result: dict[str, Any]) -> None:
    """The summary as Markdown tables, for docs/performance.md."""
    print(f"exit {result['exit_code']}, {result['minutes_run']} min")
    for group, rows in result["summary"].items():
        print(f"\n| {group} | first 10 min | last 10 min | max | slope per hour | samples |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for key, row in rows.items():
            print(f"| {key} | {row['first_10_min']:.1f} | {row['last_10_min']:.1f} | {row['max']:.1f} "
                  f"| {row['slope_per_hour']:+.1f} | {row['samples']} |")  # fmt: skip
    if result.get("allocation_growth"):
        growth = result["allocation_growth"]
        print(f"\ntraced growth {growth.get('traced_growth_mb')} MB between {growth.get('between')}")
        for row in growth.get("top", [])[:15]:
            print(f"  {row['growth_kb']:>9} kB {row['count_growth']:>8}  {row['where']}")


def resummarize(path: Path) -> None:
    """Summarize a result file's samples again (as this version summarizes) and print it."""
    result = json.loads(path.read_text())
    result["summary"] = summary(result["samples"]) if result["samples"] else {}
    path.write_text(json.dumps(result, indent=1) + "\n")
    print_result(result)


if __name__ == "__main__":
    main()

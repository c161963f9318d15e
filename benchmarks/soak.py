"""Soak: a game day of about an hour on the embedded testbed; is the harness flat over time?

    .venv/bin/python benchmarks/soak.py [--minutes 60] [--out benchmarks/results/soak.json]

Runs `harness run` on a generated plan (the local game day's replica kill, node crash and zone
latency, each repeated until the plan lasts about the minutes asked; a scenario takes 1.5-2 min)
and samples every 10 s: the harness process's resident memory
and open files, and the resident memory and process count of everything it started (Locust,
the testbed, Chaos Toolkit activities). Leaks show as a slope: it prints the first and last
ten minutes' medians and a least-squares slope per hour (scipy), and writes every sample.
Traffic stays on 127.0.0.1. Not a CI test: it takes the hour it measures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_S = 10.0


def plan_text(minutes: float) -> str:
    """Three scenarios repeated to add up to about `minutes` (each takes about 1.75 min)."""
    repeats = max(1, round(minutes / 3 / 1.75))
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


def sample(harness: psutil.Process, started: float) -> dict[str, float] | None:
    try:
        children = harness.children(recursive=True)
        own = harness.memory_info().rss
        files = harness.num_fds()
    except psutil.NoSuchProcess:
        return None
    tree = own
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            tree += child.memory_info().rss
    return {
        "t_s": round(time.monotonic() - started, 1),
        "harness_rss_mb": round(own / 2**20, 1),
        "harness_open_files": files,
        "tree_rss_mb": round(tree / 2**20, 1),
        "processes": len(children),
    }


def summary(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per measure: median of the first and last ten minutes, and the slope per hour."""
    out = {}
    window = 600.0
    end = samples[-1]["t_s"]
    for key in ("harness_rss_mb", "harness_open_files", "tree_rss_mb", "processes"):
        first = [s[key] for s in samples if s["t_s"] <= window]
        last = [s[key] for s in samples if s["t_s"] >= end - window]
        fit = stats.linregress([s["t_s"] for s in samples], [s[key] for s in samples])
        out[key] = {
            "first_10_min": statistics.median(first),
            "last_10_min": statistics.median(last),
            "slope_per_hour": round(fit.slope * 3600, 2),
            "max": max(s[key] for s in samples),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-soak-"))
    plan = work / "soak.yaml"
    plan.write_text(plan_text(args.minutes))
    command = [sys.executable, "-m", "harness", "run", str(plan), "--reports", str(work / "reports"),
               "--dir", str(work / "testbed")]  # fmt: skip
    started = time.monotonic()
    log = (work / "harness.log").open("w")
    run = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    harness = psutil.Process(run.pid)
    samples = []
    deadline = started + args.minutes * 60 * 2 + 900  # bounded: twice the plan, plus bring-up
    while run.poll() is None and time.monotonic() < deadline:
        if (point := sample(harness, started)) is not None:
            samples.append(point)
        time.sleep(SAMPLE_S)
    if run.poll() is None:
        run.terminate()
        run.wait(60)
    result = {
        "minutes_planned": args.minutes,
        "minutes_run": round((time.monotonic() - started) / 60, 1),
        "exit_code": run.returncode,
        "run_folder": str(next((work / "reports").glob("*"), "")),
        "summary": summary(samples) if samples else {},
        "samples": samples,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"| measure | first 10 min | last 10 min | max | slope per hour |  (exit {run.returncode}, "
          f"{result['minutes_run']} min)")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: |")
    for key, row in result["summary"].items():
        print(
            f"| {key} | {row['first_10_min']} | {row['last_10_min']} | {row['max']} | {row['slope_per_hour']} |"
        )


if __name__ == "__main__":
    main()

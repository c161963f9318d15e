"""Benchmark scoring: `load_series` + `score_scenario` on a day-long timeline.

    .venv/bin/python benchmarks/scoring.py [--hours 24] [--names 20] [--rounds 3] [--timeline PATH]

1. Generates a timeline file the way the recorder writes it (header, a tick line per second,
   per second and request name a bucket line whose two histograms have 20-60 bins each (25-75
   requests a second per name, lognormal latencies with medians of 4-80 ms), 1 % of the
   buckets with a late delta line written 5-30 s later, a two-minute fault at mid-day: errors
   and slow, lagging requests). `--timeline PATH` keeps the file there (and reuses it if it
   exists); otherwise it goes to a temporary folder and is removed.
2. Scores it `--rounds` times, each in a fresh Python process so that its peak RSS is scoring's
   alone, and reports wall time (load_series, score_scenario) and peak RSS.

Targets: under 10 s and under 1 GB. Results: a Markdown table on stdout and JSON in
benchmarks/results/scoring.json.
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

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from load_path import machine  # noqa: E402

from harness.timeline.buckets import SCHEMA  # noqa: E402
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY, keys_of  # noqa: E402

T0 = 1_795_700_000
FAULT_S = 120
POOL = 256
"""Bucket bodies are drawn from a pool per name (and one for the fault): generating every line's
histogram afresh would take minutes and change nothing about what scoring has to do."""

SCORE = """
import json, resource, sys, time
t0 = time.perf_counter()
from harness import scoring
t1 = time.perf_counter()
try:
    from harness.timeline import load_series
except ImportError:  # the code before the timeline package read files (--compare-with an older tree)
    from harness.scoring import load_series
series = load_series(sys.argv[1])
t2 = time.perf_counter()
phases = scoring.Phases(**json.loads(sys.argv[2]))
metrics = scoring.score_scenario(series, phases, scoring.ScoringSettings())
t3 = time.perf_counter()
usage = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "score_s": t3 - t2, "buckets": len(series),
                  "cpu_s": usage.ru_utime + usage.ru_stime, "maxrss_mb": usage.ru_maxrss / 1024,
                  "metrics": metrics.to_dict()}))

"""


def histogram_json(values_ms: np.ndarray) -> str:
    keys = keys_of(values_ms, DEFAULT_RELATIVE_ACCURACY)
    uniq, counts = np.unique(keys, return_counts=True)
    bins = ",".join(f'"{k}":{c}' for k, c in zip(uniq.tolist(), counts.tolist(), strict=True))
    return f'{{"z":{values_ms.size - keys.size},"b":{{{bins}}}}}'


def body(rng: np.random.Generator, name: str, method: str, median_ms: float, n: int, faulty: bool) -> str:
    """Everything of a bucket line after `"dt":…,`, for n requests of one name."""
    latency = rng.lognormal(np.log(median_ms), 0.45, n)
    lag = rng.exponential(0.4, n) * (rng.random(n) < 0.3)
    failures = 0
    kinds: dict[str, int] = {}
    if faulty:
        latency *= rng.uniform(3.0, 12.0)
        lag += rng.uniform(0.0, 2500.0, n)
        failed = rng.random(n) < 0.3
        failures = int(failed.sum())
        timeouts = int((failed & (rng.random(n) < 0.3)).sum())
        kinds = {k: v for k, v in (("http_5xx", failures - timeouts), ("timeout", timeouts)) if v}
        latency[failed & (rng.random(n) < 0.2)] = 0.0  # connection refused: no latency
    corrected = latency + lag
    kpi = int(rng.binomial(n - failures, 0.9)) if name == "purchase" else 0
    return (
        f'"name":"{name}","method":"{method}","requests":{n},"failures":{failures},'
        f'"failures_by_kind":{json.dumps(kinds, separators=(",", ":"))},"kpi":{kpi},'
        f'"latency_ms":{histogram_json(latency)},"latency_corrected_ms":{histogram_json(corrected)},'
        f'"latency_max_ms":{latency.max():.3f},"latency_corrected_max_ms":{corrected.max():.3f},'
        f'"latency_sum_ms":{latency.sum():.3f}}}'
    )


def generate(
    path: Path, hours: float, names: int, seed: int = 7, fault_s: int | None = None
) -> dict[str, float]:
    """Write the timeline; return the phases to score it with. The fault starts fault_s seconds
    in (default: at mid-run); the baseline is the five minutes before it (at most)."""
    rng = np.random.default_rng(seed)
    seconds = int(hours * 3600)
    spec = [("purchase", "POST", 60.0, 45)] + [
        (
            f"/api/endpoint-{i:02d}",
            "GET" if i % 3 else "POST",
            float(rng.uniform(4.0, 80.0)),
            int(rng.integers(25, 76)),
        )
        for i in range(1, names)
    ]
    pools = [
        [body(rng, name, method, median, int(rng.poisson(rps)), False) for _ in range(POOL)]
        for name, method, median, rps in spec
    ]
    fault_pools = [
        [body(rng, name, method, median, int(rng.poisson(rps)), True) for _ in range(POOL // 4)]
        for name, method, median, rps in spec
    ]
    late = [body(rng, name, method, 4000.0, 1, False) for name, method, _, _ in spec]
    fault_start = seconds // 2 if fault_s is None else fault_s
    header = {
        "type": "header",
        "schema": SCHEMA,
        "bucket_s": 1.0,
        "relative_accuracy": DEFAULT_RELATIVE_ACCURACY,
        "started": float(T0),
        "host": "http://127.0.0.1:8000",
        "pid": 1,
        "latency_unit": "ms",
    }
    picks = rng.integers(0, POOL, (seconds, names))
    is_late = rng.random((seconds, names)) < 0.01
    late_by = rng.integers(5, 31, (seconds, names))
    pending: dict[int, list[str]] = {}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps(header, separators=(",", ":")) + "\n")
        out: list[str] = []
        for s in range(seconds):
            t = T0 + s
            prefix = f'{{"type":"bucket","t":{t}.0,"dt":1.0,'
            out.append(f'{{"type":"tick","t":{t}.0,"dt":1.0,"users":400}}\n')
            faulty = fault_start <= s < fault_start + FAULT_S
            for j in range(names):
                bodies = fault_pools[j] if faulty else pools[j]
                out.append(prefix + bodies[picks[s, j] % len(bodies)] + "\n")
                if is_late[s, j]:
                    pending.setdefault(s + int(late_by[s, j]), []).append(prefix + late[j] + "\n")
            out.extend(pending.pop(s, ()))
            if len(out) > 50_000:
                fh.write("".join(out))
                out.clear()
        for s in sorted(pending):
            out.extend(pending[s])
        fh.write("".join(out))
        fh.write(json.dumps({"type": "end", "t": T0 + seconds + 1.0}) + "\n")
    return {
        "baseline_start_t": T0 + 300.0 if fault_s is None else T0 + max(0.0, fault_start - 300.0),
        "fault_start_t": T0 + fault_start + 0.4,
        "fault_end_t": T0 + fault_start + FAULT_S + 0.4,
        "end_t": T0 + seconds - 5.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--names", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--timeline", type=Path, default=None, help="keep (or reuse) the generated timeline here"
    )
    parser.add_argument(
        "--compare-with",
        type=Path,
        default=None,
        help="another checkout (e.g. the main branch): its rounds alternate with these, paired",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="harness-bench-scoring-"))
    path = args.timeline or work / "timeline.jsonl"
    phases_path = path.with_suffix(".phases.json")
    try:
        if not (path.exists() and phases_path.exists()):
            print(f"generating {args.hours} h x {args.names} names into {path}", file=sys.stderr)
            started = time.perf_counter()
            phases = generate(path, args.hours, args.names)
            phases_path.write_text(json.dumps(phases))
            print(f"generated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        phases = json.loads(phases_path.read_text())
        size_mb = path.stat().st_size / 2**20
        with path.open("rb") as fh:
            lines = sum(1 for _ in fh)
        rounds, others = [], []
        for i in range(args.rounds):
            for root, out in ((HERE.parent, rounds), (args.compare_with, others)):
                if root is None:
                    continue
                started = time.perf_counter()
                proc = subprocess.run(
                    [sys.executable, "-c", SCORE, str(path), json.dumps(phases)],
                    capture_output=True,
                    text=True,
                    check=True,
                    cwd=root,
                    env={**os.environ, "PYTHONPATH": str(root)},
                )
                wall = time.perf_counter() - started
                result = json.loads(proc.stdout)
                result["process_s"] = wall
                out.append(result)
                print(
                    f"round {i + 1} ({root}): load {result['load_s']:.2f} s, score {result['score_s']:.2f} s, "
                    f"RSS {result['maxrss_mb']:.0f} MB",
                    file=sys.stderr,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {
        "machine": machine(),
        "load_average": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d"),
        "timeline": {
            "hours": args.hours,
            "names": args.names,
            "lines": lines,
            "size_mb": round(size_mb, 1),
            "buckets": rounds[0]["buckets"],
        },
        "rounds": [{k: v for k, v in r.items() if k != "metrics"} for r in rounds],
        "compared_with": str(args.compare_with) if args.compare_with else None,
        "other_rounds": [{k: v for k, v in r.items() if k != "metrics"} for r in others],
        "same_metrics": all(r["metrics"] == rounds[0]["metrics"] for r in others),
        "metrics": rounds[0]["metrics"],
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "scoring.json").write_text(json.dumps(report, indent=2) + "\n")
    total = [r["load_s"] + r["score_s"] for r in rounds]
    print(f"Machine: {report['machine']}; load average {report['load_average']} during the run\n")
    print(
        f"Timeline: {args.hours:g} h, {args.names} names, 1 s buckets, {lines:,} lines, {size_mb:,.0f} MB\n"
    )
    print("| step | median | rounds |")
    print("| --- | --- | --- |")
    for label, values in (
        ("load_series", [r["load_s"] for r in rounds]),
        ("score_scenario", [r["score_s"] for r in rounds]),
        ("load + score (target < 10 s)", total),
        ("whole process incl. imports", [r["process_s"] for r in rounds]),
        ("CPU time of that process (user + system)", [r["cpu_s"] for r in rounds]),
    ):
        print(f"| {label} | {statistics.median(values):.2f} s | {', '.join(f'{v:.2f}' for v in values)} |")
    if others:
        theirs = [r["load_s"] + r["score_s"] for r in others]
        ratios = [a / b for a, b in zip(total, theirs, strict=True)]
        print(
            f"| load + score, {args.compare_with} | {statistics.median(theirs):.2f} s | "
            f"{', '.join(f'{v:.2f}' for v in theirs)} |"
        )
        print(
            f"| ratio this / that, paired rounds | {statistics.median(ratios):.2f} | "
            f"{', '.join(f'{v:.2f}' for v in ratios)} |"
        )
        print(f"| same metrics | {report['same_metrics']} | |")
    rss = [r["maxrss_mb"] for r in rounds]
    print(
        f"| peak RSS (target < 1024 MB) | {statistics.median(rss):.0f} MB | {', '.join(f'{v:.0f}' for v in rss)} |"
    )


if __name__ == "__main__":
    main()

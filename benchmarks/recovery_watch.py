"""Benchmark the engine's recovery watch: the cost of one check as a 20-name scenario runs on.

    .venv/bin/python benchmarks/recovery_watch.py [--names 20] [--checks 60] [--at 300 3600 21600]

For each run time T (default 5 min, 1 h, 6 h):

1. Generates, with benchmarks/scoring.py's generator, a timeline of T + `--checks` seconds
   (1 s buckets, `--names` request names, 1 % late delta lines, a two-minute fault after a
   five-minute baseline, 10 minutes in: at mid-run for a shorter run),
   and writes its first T seconds to a live file, read once into the engine's live series
   (`harness.engine.abort.LiveSeries`; not timed: the engine read it a second at a time).
2. Then, `--checks` times: appends the next second of lines (as the recorder does) and times
   what the engine does every second: update the live series with the appended bytes, the
   abort conditions (`tripped`, error rate and p95), the progress line's last five seconds,
   and the recovery check (`scoring.RecoveryWatch`, observation from the fault at mid-run to the
   last closed bucket). The first check also resolves the thresholds from the baseline (once;
   again only if a late delta changes a baseline bucket).

Each check is timed by the wall clock and by the process's CPU time (all its threads): on a
machine shared with other work the wall clock mostly measures the waits for a core, the CPU time
what the check itself costs. The recovery check's own CPU time and the buckets it judged are kept
too (the buckets judged stay a few dozen however long the run: the watch judges only what changed).

Target: at most 10 ms a check, flat as the run grows. Results: a Markdown table on stdout
and JSON in benchmarks/results/recovery_watch.json (`--out` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from load_path import machine  # noqa: E402
from scoring import T0, generate  # noqa: E402

from harness import scoring  # noqa: E402
from harness.engine import abort  # noqa: E402
from harness.engine.progress import Progress  # noqa: E402
from harness.plan import AbortCondition  # noqa: E402

CONDITIONS = (AbortCondition(metric="error_rate", above=0.5), AbortCondition(metric="p95_ms", above=5000.0))


def tick_offsets(text: bytes, first_s: int, last_s: int) -> list[int]:
    """Byte offsets of the tick lines of seconds first_s..last_s (each second's lines start there)."""
    out = []
    for s in range(first_s, last_s + 1):
        at = text.find(f'{{"type":"tick","t":{T0 + s}.0,'.encode())
        out.append(at if at >= 0 else len(text))
    return out


def measure(run_s: int, names: int, checks: int, work: Path) -> dict[str, object]:
    whole = work / f"whole-{run_s}.jsonl"
    fault_s = min(run_s // 2, 600)
    phases = scoring.Phases(**generate(whole, (run_s + checks) / 3600, names, fault_s=fault_s))
    text = whole.read_bytes()
    offsets = tick_offsets(text, run_s, run_s + checks)
    path = work / f"live-{run_s}.jsonl"
    path.write_bytes(text[: offsets[0]])
    live = abort.LiveSeries(path)
    live.update()
    settings = scoring.ScoringSettings()
    progress = Progress(quiet=True)
    watch = scoring.RecoveryWatch(phases, settings)
    costs, cpu, watch_cpu, judged = [], [], [], []
    with path.open("ab") as fh:
        for i in range(checks):
            fh.write(text[offsets[i] : offsets[i + 1]])
            fh.flush()
            now = T0 + run_s + i + 2.0  # the recorder writes a second about a second after it ends
            started, started_cpu = time.perf_counter(), time.process_time()
            with live.lock:
                live.update()
                series = live.series
                assert series is not None
                for condition in CONDITIONS:
                    abort.tripped(series, condition, now)
                progress.tick(series)
                watch_started = time.process_time()
                watch.recovered(series, now - 3.0)
                watch_cpu.append(time.process_time() - watch_started)
            costs.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
            judged.append(getattr(watch, "rejudged", None))
    assert live.file.reads[-1][1] == offsets[-1], "every appended byte was read, once"
    whole.unlink()
    path.unlink()
    return {
        "run_s": run_s,
        "buckets": len(series),
        "file_mb": round(offsets[-1] / 2**20, 1),
        "median_ms": round(1000 * statistics.median(costs), 2),
        "max_ms": round(1000 * max(costs), 2),
        "first_ms": round(1000 * costs[0], 2),
        "cpu_median_ms": round(1000 * statistics.median(cpu), 2),
        "cpu_max_ms": round(1000 * max(cpu), 2),
        "watch_cpu_median_ms": round(1000 * statistics.median(watch_cpu), 3),
        "watch_cpu_max_ms": round(1000 * max(watch_cpu), 3),
        "buckets_judged_median": None if judged[-1] is None else statistics.median(judged[1:]),
        "checks_ms": [round(1000 * c, 3) for c in costs],
        "checks_cpu_ms": [round(1000 * c, 3) for c in cpu],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--names", type=int, default=20)
    parser.add_argument("--checks", type=int, default=60)
    parser.add_argument("--at", type=int, nargs="+", default=[300, 3600, 21600], help="run times, seconds")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "recovery_watch.json")
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="harness-bench-watch-") as tmp:
        for run_s in args.at:
            print(f"{run_s} s of {args.names} names: generating, then {args.checks} checks", file=sys.stderr)
            results.append(measure(run_s, args.names, args.checks, Path(tmp)))
    report = {
        "machine": machine(),
        "load_average": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "date": time.strftime("%Y-%m-%d"),
        "names": args.names,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"Machine: {report['machine']}; load average {report['load_average']} after the run\n")
    print(
        "| run time | timeline | check: median | check: max (target ≤ 10 ms) | first check"
        " | CPU: median | CPU: max | recovery check CPU: median | buckets judged |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r['run_s']} s | {r['file_mb']} MB | {r['median_ms']} ms | {r['max_ms']} ms | {r['first_ms']} ms"
            f" | {r['cpu_median_ms']} ms | {r['cpu_max_ms']} ms | {r['watch_cpu_median_ms']} ms"
            f" | {r['buckets_judged_median']} |"
        )


if __name__ == "__main__":
    main()

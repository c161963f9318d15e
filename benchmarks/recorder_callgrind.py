"""The timeline recorder's cost on the load path, in instructions (valgrind's callgrind).

    .venv/bin/python benchmarks/recorder_callgrind.py [--short 1500] [--long 6000] [--users 4]

Wall-clock and CPU time on a shared VM drift by ±30 % between identical runs; instruction
counts do not. There are no hardware counters here, so callgrind counts them, running the
program about 50 times slower. Two things follow, and the method is built around them.

1. Start-up (imports, spawning users) costs millions of instructions whatever listens. Each
   variant ("none": Locust alone; "recorder": the harness recorder, as load_path.py runs them)
   runs twice, to BENCH_REQUESTS requests and to more, and the *marginal* instructions per
   request, (I_long - I_short) / (R_long - R_short), cancel start-up.
2. The recorder's ticker runs once per wall-clock second. At 50 times slower, a tick under
   callgrind folds about 1/50 of the requests it folds at normal speed, and the part of a
   tick's cost that does not grow with its requests is charged to 50 times fewer requests.
   A process starved of CPU also misses ticks, so one tick folds and writes several seconds.
   So the ticks are taken out as they ran and put back at the real rate:

       per request = m_recorder - T_run / R + T(k_real) / k_real

   where m_recorder is the marginal instructions per request with the recorder (ticks
   included, as they ran); T_run / R the ticks' own marginal instructions per request in that
   same process (locust_fast.py runs each tick inside functools.reduce, a C function nothing
   else there calls, and callgrind's inclusive count of it is what the ticks executed, folding
   included); T(k) what one tick costs that folds and writes the k requests of one second,
   folding included (this script's `--tick-probe`: a Recorder fed k requests per second
   through its listener and ticked every second under the same mark, marginal over two tick
   counts); and k_real the requests per tick of the same Locust set-up at normal speed,
   measured first (or given with --requests-per-tick). m_recorder - T_run / R is then the
   listener and whatever else the recorder adds per request.

Every run is bounded in time, and all traffic goes to 127.0.0.1. Results: a Markdown table on
stdout, JSON in benchmarks/results/recorder_callgrind.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from load_path import start_fast_haproxy  # noqa: E402

from harness import children  # noqa: E402
from harness.load.process import read_locust_totals  # noqa: E402
from harness.timeline import read_timeline  # noqa: E402

RUN_BOUND_S = 1800
"""No callgrind run may take longer than this (a long run takes 3-8 minutes on a busy 2-core VM)."""


def callgrind(argv: list[str], out: Path, env: dict[str, str], log: Path) -> int:
    """Run argv under callgrind; the instructions it executed (Ir)."""
    valgrind = shutil.which("valgrind") or "/usr/bin/valgrind"
    cmd = [valgrind, "--tool=callgrind", f"--callgrind-out-file={out}", *argv]
    # OpenBLAS's idle threads spin for a while after numpy loads, for as long as the scheduler
    # lets them: instructions that count wall time, not work (nothing here calls BLAS). A
    # fixed hash seed keeps dict and set layouts, and so their probing, the same run to run.
    quiet = {"OPENBLAS_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    with log.open("wb") as fh:
        proc = subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, **quiet, **env},
            start_new_session=True,
        )
        try:
            proc.wait(RUN_BOUND_S)
        finally:
            children.stop_group(proc, grace_s=10)
    match = re.search(r"^summary:\s*(\d+)", out.read_text(), re.MULTILINE)
    if match is None or proc.returncode != 0:
        raise RuntimeError(f"callgrind run failed (exit {proc.returncode}); see {log}")
    return int(match.group(1))


TICK_MARK = "functools_reduce"
"""The C function locust_fast.py runs each tick inside (nothing else calls it there)."""


def inclusive(out: Path, function: str) -> int:
    """Instructions executed inside `function` (inclusive), from a callgrind output file."""
    text = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", str(out)],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout  # fmt: skip
    # One line per source file the function's code came from (inlined headers count apart);
    # each line's inclusive count covers its own instructions and the calls made from them.
    return sum(
        int(line.split()[0].replace(",", ""))
        for line in text.splitlines()
        if re.search(rf":{function}(\s|$)", line)
    )


def locust_argv(port: int, users: int, out: Path, mode: str, run_time_s: int) -> list[str]:
    argv = [
        sys.executable, "-m", "locust", "-f", str(HERE / "locust_fast.py"), "--headless", "--only-summary",
        "--host", f"http://127.0.0.1:{port}", "-u", str(users), "-r", str(users),
        "--run-time", f"{run_time_s}s", "--stop-timeout", "1s", "--json-file", str(out / "locust"),
        "--loglevel", "WARNING",
    ]  # fmt: skip
    if mode == "recorder":
        argv += ["--timeline", str(out / "timeline.jsonl")]
    return argv


def requests_per_bucket(path: Path) -> list[int]:
    """Requests of every name in each bucket of a timeline file, in time order."""
    per_t: dict[float, int] = {}
    for bucket in read_timeline(path).buckets.values():
        per_t[bucket.t] = per_t.get(bucket.t, 0) + bucket.requests
    return [per_t[t] for t in sorted(per_t)]


def real_rate(port: int, users: int, seconds: int, work: Path) -> dict:
    """Requests per 1 s tick of the recorder variant at normal speed (full buckets, median)."""
    out = work / "normal"
    out.mkdir(parents=True, exist_ok=True)
    env = {"BENCH_RECORDER": "recorder", "PYTHONPATH": str(HERE.parent)}
    with (out / "locust.log").open("wb") as fh:
        proc = subprocess.Popen(
            locust_argv(port, users, out, "recorder", seconds), stdout=fh, stderr=subprocess.STDOUT,
            env={**os.environ, **env}, start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(seconds + 60)
        finally:
            children.stop_group(proc, grace_s=10, leader_only=True)
    per_bucket = requests_per_bucket(out / "timeline.jsonl")[1:-1]
    return {"seconds": seconds, "requests_per_tick": statistics.median(per_bucket), "buckets": per_bucket}


def locust_run(port: int, users: int, requests: int, mode: str, work: Path, tag: str) -> dict:
    """One Locust process under callgrind, quitting after `requests` requests."""
    out = work / tag
    out.mkdir(parents=True, exist_ok=True)
    env = {
        "BENCH_RECORDER": mode,
        "BENCH_REQUESTS": str(requests),
        "BENCH_TICKS_LOG": str(out / "ticks"),
        "BENCH_GC_LOG": str(out / "gc.json"),
        "PYTHONPATH": str(HERE.parent),
    }
    t0 = time.monotonic()
    ir = callgrind(
        locust_argv(port, users, out, mode, RUN_BOUND_S - 60), out / "callgrind.out", env, out / "locust.log"
    )
    totals = read_locust_totals(out / "locust.json")
    result = {
        "mode": mode,
        "instructions": ir,
        "requests": totals.requests,
        "wall_s": time.monotonic() - t0,
        "gc_collections": json.loads((out / "gc.json").read_text()),
    }
    if mode == "recorder":
        total = read_timeline(out / "timeline.jsonl").total()
        recorded, failures = total.requests, total.failures
        if (recorded, failures) != (totals.requests, totals.failures):
            raise RuntimeError(f"{tag}: timeline has {recorded}/{failures}, Locust {totals}")
        result["ticks"] = int((out / "ticks").read_text())
        result["tick_instructions"] = inclusive(out / "callgrind.out", TICK_MARK)
    print(
        f"  {tag}: {ir:,} instructions, {totals.requests} requests, {result['wall_s']:.0f} s", file=sys.stderr
    )
    return result


# --- the per-tick probe ---------------------------------------------------------------------


def tick_probe(per_tick: int, ticks: int, path: Path) -> None:
    """Feed a Recorder `per_tick` requests through its listener for each of `ticks` rounds.

    The requests of round j fall in second j and the recorder is ticked after each round, as
    its ticker would at normal speed, inside the same mark as locust_fast.py's ticks (one
    bucket line per tick). Latencies are log-normal around 1 ms (this endpoint's at normal
    speed), from a fixed seed.
    """
    import functools

    import numpy as np

    from harness.load.recorder import Recorder

    env = SimpleNamespace(runner=SimpleNamespace(user_count=4), host="http://127.0.0.1", parsed_options=None)
    rec = Recorder(env, str(path), 1.0)
    rng = np.random.default_rng(1)
    t0 = float(int(time.time()))
    response = SimpleNamespace(status_code=200)
    on_request = rec.on_request
    for j in range(ticks):
        starts = (t0 + j + rng.random(per_tick)).tolist()
        latencies = rng.lognormal(0.0, 0.6, per_tick).tolist()
        for start, ms in zip(starts, latencies, strict=True):
            on_request(
                request_type="GET", name="/", context={}, response=response, exception=None,
                start_time=start, url="http://127.0.0.1/", response_length=2, response_time=ms,
            )  # fmt: skip
        now = t0 + j + 1 + 1.005
        functools.reduce(lambda _acc, _x: rec.tick(now), (0,), None)
    rec.close()


def tick_cost(per_tick: int, ticks: tuple[int, int], work: Path) -> dict:
    """Instructions of one tick that folds and writes `per_tick` requests (see tick_probe)."""
    ir: dict[int, int] = {}
    for n in ticks:
        tag = f"probe-{per_tick}-{n}"
        argv = [sys.executable, str(Path(__file__).resolve()), "--tick-probe", str(per_tick), str(n)]
        argv.append(str(work / f"{tag}.jsonl"))
        out = work / f"{tag}.out"
        callgrind(argv, out, {"PYTHONPATH": str(HERE.parent)}, work / f"{tag}.log")
        ir[n] = inclusive(out, TICK_MARK)
    short, long = ticks
    per_tick_ir = (ir[long] - ir[short]) / (long - short)
    print(f"  tick of {per_tick} requests: {per_tick_ir:,.0f} instructions", file=sys.stderr)
    return {"requests_per_tick": per_tick, "instructions_per_tick": per_tick_ir, "tick_instructions": {
        f"ticks-{n}": v for n, v in ir.items()}}  # fmt: skip


def marginal(short: dict, long: dict) -> float:
    return (long["instructions"] - short["instructions"]) / (long["requests"] - short["requests"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--short", type=int, default=1500, help="requests in the short runs")
    parser.add_argument("--long", type=int, default=6000, help="requests in the long runs")
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--normal-seconds", type=int, default=12, help="length of the normal-speed run")
    parser.add_argument(
        "--requests-per-tick",
        type=int,
        default=0,
        help="charge ticks at this rate instead of the measured one",
    )
    parser.add_argument(
        "--tick-probe", nargs=2, type=int, metavar=("PER_TICK", "TICKS"), help=argparse.SUPPRESS
    )
    parser.add_argument("probe_path", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.tick_probe:
        tick_probe(args.tick_probe[0], args.tick_probe[1], Path(args.probe_path))
        return

    work = Path(tempfile.mkdtemp(prefix="harness-callgrind-"))
    proxy, port = start_fast_haproxy(work)
    runs: list[dict] = []
    try:
        time.sleep(0.5)
        print("normal speed: requests per tick", file=sys.stderr)
        normal = real_rate(port, args.users, args.normal_seconds, work)
        print(f"  {normal['requests_per_tick']:.0f} requests per tick ({normal['buckets']})", file=sys.stderr)
        print("callgrind: Locust runs", file=sys.stderr)
        for r in range(args.rounds):
            for length in (args.short, args.long):
                for mode in ("none", "recorder"):
                    run = locust_run(port, args.users, length, mode, work, f"{mode}-{length}-{r}")
                    runs.append({**run, "round": r, "length": length})
    finally:
        children.stop_group(proxy, grace_s=5)

    def pick(mode: str, length: int, r: int) -> dict:
        return next(x for x in runs if (x["mode"], x["length"], x["round"]) == (mode, length, r))

    rounds = []
    for r in range(args.rounds):
        bare = marginal(pick("none", args.short, r), pick("none", args.long, r))
        rs, rl = pick("recorder", args.short, r), pick("recorder", args.long, r)
        dr = rl["requests"] - rs["requests"]
        rounds.append(
            {"bare": bare, "recorder_raw": marginal(rs, rl), "ticks_per_request": (rl["ticks"] - rs["ticks"]) / dr,
             "ticks_as_run": (rl["tick_instructions"] - rs["tick_instructions"]) / dr}
        )  # fmt: skip
    tau = statistics.median(x["ticks_per_request"] for x in rounds)
    print("callgrind: tick probe", file=sys.stderr)
    k_real = args.requests_per_tick or round(normal["requests_per_tick"])
    real = tick_cost(k_real, (3, 13), work)
    for x in rounds:
        x["recorder_without_ticks"] = x["recorder_raw"] - x["ticks_as_run"]
        x["recorder"] = x["recorder_without_ticks"] + real["instructions_per_tick"] / k_real
        x["overhead"] = x["recorder"] / x["bare"] - 1
        x["overhead_raw"] = x["recorder_raw"] / x["bare"] - 1
        x["overhead_without_ticks"] = x["recorder_without_ticks"] / x["bare"] - 1
    shutil.rmtree(work, ignore_errors=True)

    from load_path import machine

    report = {
        "machine": machine(),
        "date": time.strftime("%Y-%m-%d"),
        "users": args.users,
        "lengths": [args.short, args.long],
        "normal_speed": normal,
        "tick_real": real,
        "runs": runs,
        "rounds": rounds,
    }
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "recorder_callgrind.json").write_text(json.dumps(report, indent=2))
    med = {key: statistics.median(x[key] for x in rounds) for key in rounds[0]}
    print(f"Machine: {report['machine']}\n")
    print("| Locust process | instructions per request | vs bare |")
    print("| --- | ---: | ---: |")
    print(f"| bare (no listener) | {med['bare'] / 1e3:.1f} k | |")
    print(
        f"| recorder, ticks as they ran under callgrind ({1 / tau:.0f} requests per tick) "
        f"| {med['recorder_raw'] / 1e3:.1f} k | {100 * med['overhead_raw']:+.2f} % |"
    )
    print(f"| — of which the ticks, measured in the process | {med['ticks_as_run'] / 1e3:.1f} k | |")
    print(
        f"| recorder without its ticks (listener) | {med['recorder_without_ticks'] / 1e3:.1f} k "
        f"| {100 * med['overhead_without_ticks']:+.2f} % |"
    )
    print(
        f"| recorder, ticks at the real rate ({k_real} requests per tick) "
        f"| {med['recorder'] / 1e3:.1f} k | **{100 * med['overhead']:+.2f} %** |"
    )
    print(f"\nOne tick of {k_real} requests: {real['instructions_per_tick'] / 1e3:.0f} k instructions")
    if args.rounds > 1:
        print("rounds' overhead: " + ", ".join(f"{100 * x['overhead']:+.2f} %" for x in rounds))


if __name__ == "__main__":
    main()

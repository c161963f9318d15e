"""Start, watch and stop Locust in its own process(es), bounded in time.

Locust patches its process with gevent, which breaks chaoslib, the Kubernetes client and
boto3, so the harness never imports it: it runs `python -m locust` headless in a new
session and reads back the timeline and Locust's CSV totals.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness import children
from harness.errors import HarnessError

STOP_TIMEOUT_S = 2
"""Locust's --stop-timeout: in-flight tasks get this long to finish when the test stops."""
PR_SET_PDEATHSIG = 1
SHUTDOWN_MARGIN_S = 30.0
"""After run time plus stop timeout, how long Locust may take to exit before it is killed."""


@dataclass(frozen=True)
class LoadSpec:
    """What to run: one Locust invocation."""

    locustfile: Path
    host: str
    users: int = 20
    spawn_rate: float = 10.0
    run_time_s: float = 15.0
    processes: int = 1
    bucket_s: float = 1.0
    pacing_s: float | None = None
    extra_args: Sequence[str] = ()


@dataclass
class LoadResult:
    """Where a Locust run left its output, and how it exited."""

    out_dir: Path
    returncode: int | None = None
    timeline: Path = field(init=False)
    csv_prefix: Path = field(init=False)
    acks: Path = field(init=False)
    log: Path = field(init=False)
    stats_json: Path = field(init=False)

    def __post_init__(self) -> None:
        self.timeline = self.out_dir / "timeline.jsonl"
        self.csv_prefix = self.out_dir / "locust"
        self.acks = self.out_dir / "acks.jsonl"
        self.log = self.out_dir / "locust.log"
        self.stats_json = self.out_dir / "locust.json"


def locust_command(spec: LoadSpec, result: LoadResult) -> list[str]:
    options = {
        "-f": str(spec.locustfile),
        "--host": spec.host,
        "-u": str(spec.users),
        "-r": str(spec.spawn_rate),
        "--run-time": f"{max(1, round(spec.run_time_s))}s",
        "--stop-timeout": f"{STOP_TIMEOUT_S}s",
        "--timeline": str(result.timeline),
        "--timeline-bucket": str(spec.bucket_s),
        "--csv": str(result.csv_prefix),
        # Locust appends ".json" to this name.
        "--json-file": str(result.stats_json.with_suffix("")),
        "--acks": str(result.acks),
        "--loglevel": "WARNING",
    }
    if spec.processes > 1:
        options["--processes"] = str(spec.processes)
    if spec.pacing_s is not None:
        options["--pacing"] = str(spec.pacing_s)
    flat = [part for pair in options.items() for part in pair]
    return [sys.executable, "-m", "locust", "--headless", "--only-summary", *flat, *spec.extra_args]


@contextmanager
def open_load(spec: LoadSpec, out_dir: Path) -> Iterator[tuple[subprocess.Popen, LoadResult]]:
    """Start Locust; on leaving the block, stop it (SIGTERM, then SIGKILL) and record its exit."""
    if not spec.locustfile.is_file():
        raise HarnessError(f"locustfile {spec.locustfile} does not exist")
    out_dir.mkdir(parents=True, exist_ok=True)
    result = LoadResult(out_dir)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with result.log.open("ab") as log:
        process = subprocess.Popen(
            locust_command(spec, result),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=_terminate_with_parent,
        )
        try:
            yield process, result
        finally:
            # SIGTERM to the master only: Locust then stops its users and workers, writes its
            # final stats and quits (the recorder writes its last buckets).
            result.returncode = children.stop_group(
                process, grace_s=STOP_TIMEOUT_S + SHUTDOWN_MARGIN_S, leader_only=True
            )


def _terminate_with_parent() -> None:
    """In the child before exec: get SIGTERM if the harness dies, even by SIGKILL (Linux only).

    Without it, a harness killed mid-run would leave Locust sending load until its run time
    ends; with it, Locust stops and writes what it measured.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass  # not Linux: Locust's own --run-time still bounds it


def run_load(spec: LoadSpec, out_dir: Path) -> LoadResult:
    """Run Locust for spec.run_time_s and wait for it to exit (bounded)."""
    deadline = time.monotonic() + spec.run_time_s + STOP_TIMEOUT_S + SHUTDOWN_MARGIN_S
    with open_load(spec, out_dir) as (process, result):
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
    return result


@dataclass(frozen=True)
class LocustTotals:
    requests: int
    failures: int


def read_locust_totals(stats_json: Path) -> LocustTotals:
    """Locust's own final totals, from the --json-file it writes after the last request.

    (Its CSV stats are rewritten once a second and may miss the last second.)
    """
    try:
        entries = json.loads(stats_json.read_text())
    except FileNotFoundError as exc:
        raise HarnessError(f"Locust wrote no stats file at {stats_json}") from exc
    except json.JSONDecodeError as exc:
        raise HarnessError(f"{stats_json}: not JSON ({exc})") from exc
    return LocustTotals(
        requests=sum(int(e["num_requests"]) for e in entries),
        failures=sum(int(e["num_failures"]) for e in entries),
    )

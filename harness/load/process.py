"""Start, watch and stop Locust in its own process(es), bounded in time.

Locust patches its process with gevent, which breaks chaoslib, the Kubernetes client and
boto3, so the harness never imports it: it runs `python -m locust` headless in a new
session and reads back the timeline and Locust's CSV totals.

Load beyond one machine uses Locust's own master/worker: with `workers > 0` the harness runs
only the master, listening on `master_bind`, and waits (bounded) until that many workers have
joined before the load counts as started; `worker_command` is what a worker machine runs
(`harness load worker`). The workers ship their timeline deltas and acknowledgements to the
master (harness.load.recorder, harness.load.acks), so the run folder holds all of it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from harness import children
from harness.errors import HarnessError
from harness.timeline import TimelineFile

STOP_TIMEOUT_S = 2
"""Locust's --stop-timeout: in-flight tasks get this long to finish when the test stops."""
SHAPE_FILE = Path(__file__).with_name("locustshape.py")
"""The LoadTestShape Locust runs beside the locustfile for a plan's non-constant load.shape."""
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
    workers: int = 0
    """Locust workers on other machines to wait for; 0: this host's own process(es) make the load."""
    master_bind: tuple[str, int] = ("0.0.0.0", 5557)
    """Where the master listens for workers (with workers > 0)."""
    join_timeout_s: float = 60.0
    """How long to wait for every worker to join (with workers > 0)."""
    shape: str = "constant"
    """A load shape of harness.load.shapes other than constant: Locust runs harness.load.locustshape
    beside the locustfile, and users follow the profile instead of -u/-r."""
    shape_duration_s: float = 60.0
    """Seconds the shape's profile spans; after them its last level holds until the load stops."""


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
    workers_joined: int = 0
    """Workers that had joined when the load started (with LoadSpec.workers > 0)."""

    def __post_init__(self) -> None:
        self.timeline = self.out_dir / "timeline.jsonl"
        self.csv_prefix = self.out_dir / "locust"
        self.acks = self.out_dir / "acks.jsonl"
        self.log = self.out_dir / "locust.log"
        self.stats_json = self.out_dir / "locust.json"


def locust_command(spec: LoadSpec, result: LoadResult) -> list[str]:
    shaped = spec.shape != "constant"
    options: dict[str, str | None] = {
        "-f": f"{spec.locustfile},{SHAPE_FILE}" if shaped else str(spec.locustfile),
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
    if spec.workers > 0:
        host, port = spec.master_bind
        options["--master"] = None
        options["--expect-workers"] = str(spec.workers)
        options["--master-bind-host"] = host
        options["--master-bind-port"] = str(port)
        # Locust's own give-up, after the harness's: a backstop should the harness not stop it.
        options["--expect-workers-max-wait"] = str(round(spec.join_timeout_s + SHUTDOWN_MARGIN_S))
    elif spec.processes > 1:
        options["--processes"] = str(spec.processes)
    if spec.pacing_s is not None:
        options["--pacing"] = str(spec.pacing_s)
    if shaped:
        options["--shape"] = spec.shape
        options["--shape-users"] = str(spec.users)
        options["--shape-duration"] = str(spec.shape_duration_s)
        options["--shape-hold"] = None
    flat = [part for pair in options.items() for part in pair if part is not None]
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
            if spec.workers > 0:
                result.workers_joined = wait_for_workers(process, result, spec)
            yield process, result
        finally:
            # SIGTERM to the master only: Locust then stops its users and workers, writes its
            # final stats and quits (the recorder writes its last buckets).
            result.returncode = children.stop_group(
                process, grace_s=STOP_TIMEOUT_S + SHUTDOWN_MARGIN_S, leader_only=True
            )


class WorkersMissingError(HarnessError):
    """Fewer Locust workers joined the master than the plan expects, within its join timeout.

    Raised before any load flows (so before anything is injected); the scenario cannot run.
    """

    def __init__(
        self, joined: int, expected: int, bind: tuple[str, int], timeout_s: float, log: Path
    ) -> None:
        self.joined, self.expected, self.bind, self.timeout_s = joined, expected, bind, timeout_s
        super().__init__(
            f"{joined} of {expected} Locust workers joined the master at {bind[0]}:{bind[1]} within "
            f"{timeout_s:g} s (load.workers.expect: {expected}); start them with "
            f"`harness load worker --master HOST:{bind[1]}`; see {log}"
        )


def wait_for_workers(
    process: subprocess.Popen,
    result: LoadResult,
    spec: LoadSpec,
    clock: Callable[[], float] = time.monotonic,
    poll_s: float = 0.2,
) -> int:
    """Wait until spec.workers workers have joined the master (its `workers` timeline lines);
    the number that joined. Raises WorkersMissingError after spec.join_timeout_s."""
    deadline = clock() + spec.join_timeout_s
    joined = 0
    timeline = TimelineFile(result.timeline)
    while True:
        joined = _joined(timeline)
        if joined >= spec.workers:
            return joined
        if process.poll() is not None:
            raise HarnessError(
                f"Locust exited (code {process.returncode}) while waiting for workers "
                f"({joined} of {spec.workers} joined); see {result.log}"
            )
        if clock() >= deadline:
            raise WorkersMissingError(joined, spec.workers, spec.master_bind, spec.join_timeout_s, result.log)
        time.sleep(poll_s)


def _joined(timeline: TimelineFile) -> int:
    """Workers joined, from the lines the master appended since the last look."""
    try:
        timeline.update()
    except HarnessError:
        return 0  # not written yet
    workers = timeline.workers
    return int(workers["joined"]) if workers else 0


def worker_command(locustfile: Path, master: tuple[str, int], processes: int = 1) -> list[str]:
    """A Locust worker for the master at `master`: what `harness load worker` runs, and restarts.

    A worker takes the run's options (host, users, timeline, acks, pacing, timeouts) from the
    master when a test starts, so it needs only the locustfile and where the master is.
    """
    command = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--worker",
        "--master-host", master[0], "--master-port", str(master[1]), "--loglevel", "WARNING",
    ]  # fmt: skip
    if processes > 1:
        command += ["--processes", str(processes)]
    return command


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


WORKER_RESTART_S = 1.0
"""Pause before a worker that exited starts again: its master quit at the end of a scenario,
and the next scenario's master binds the same port moments later."""
WORKER_BACKOFF_MAX_S = 30.0
"""A worker that exits within seconds of starting is failing (a locustfile that does not import,
an unknown option): the pause doubles up to this, so the log shows the error without a flood."""


def run_workers(
    locustfile: Path,
    master: tuple[str, int],
    log_path: Path | None,
    processes: int = 1,
    runs: int = 0,
) -> int:
    """Run Locust workers for the master at `master`, again each time they exit; the last exit code.

    Locust's master quits at the end of each scenario and its workers quit with it, while a
    plan runs one master per scenario and trial: restarting is what lets one worker machine (or
    the in-cluster Deployment) serve a whole plan. A worker waits for its master up to 300 s
    (Locust's connect retries), then exits and is restarted. `runs` > 0 stops after that many
    (tests); 0 runs until SIGTERM or SIGINT, which stop the current worker first.
    """
    if not locustfile.is_file():
        raise HarnessError(f"--locustfile: {locustfile} does not exist")
    stopping: list[int] = []

    def _stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    code = 0
    started = 0
    pause_s = WORKER_RESTART_S
    try:
        with contextlib.ExitStack() as stack:
            log = stack.enter_context(log_path.open("ab")) if log_path is not None else None
            while not stopping and (runs == 0 or started < runs):
                process = subprocess.Popen(
                    worker_command(locustfile, master, processes),
                    stdout=log,
                    stderr=subprocess.STDOUT if log is not None else None,
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                    start_new_session=True,
                    preexec_fn=_terminate_with_parent,
                )
                started += 1
                began = time.monotonic()
                try:
                    while process.poll() is None and not stopping:
                        time.sleep(0.2)
                finally:
                    # SIGTERM to the leader: a Locust worker then tells its master it quits.
                    code = children.stop_group(process, grace_s=STOP_TIMEOUT_S + 5, leader_only=True)
                quick = time.monotonic() - began < 10 * WORKER_RESTART_S
                pause_s = min(2 * pause_s, WORKER_BACKOFF_MAX_S) if quick else WORKER_RESTART_S
                end = time.monotonic() + pause_s
                while not stopping and time.monotonic() < end and (runs == 0 or started < runs):
                    time.sleep(0.1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code

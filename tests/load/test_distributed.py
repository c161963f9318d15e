"""Load from Locust workers in processes of their own: their acknowledgements and timeline reach
the master's run folder, and a master short of workers gives up with the count."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from harness import children
from harness.load import process
from harness.load.process import LoadResult, LoadSpec, read_locust_totals
from harness.timeline import read_timeline
from tests.load.loopback import QuietHandler, serve

pytestmark = pytest.mark.slow
ACKING_LOCUSTFILE = Path(__file__).with_name("acking_locustfile.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def open_slow_service(delay_s: float) -> Iterator[str]:
    """A loopback service that answers every GET after delay_s: users are mid-request when load stops."""

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            time.sleep(delay_s)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    with serve(Handler) as url:
        yield url


@contextmanager
def open_workers(
    count: int, port: int, cwd: Path, locustfile: Path = ACKING_LOCUSTFILE, runs: int = 1
) -> Iterator[list]:
    """`count` worker processes (`harness load worker`, `runs` runs each) in `cwd`; stopped at the end."""
    cwd.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "harness", "load", "worker", "--master", f"127.0.0.1:{port}",
        "--locustfile", str(locustfile), "--runs", str(runs),
    ]  # fmt: skip
    started = [
        subprocess.Popen([*command, "--log", str(cwd / f"worker-{i}.log")], cwd=cwd, start_new_session=True)
        for i in range(count)
    ]
    try:
        yield started
    finally:
        for worker in started:
            children.stop_group(worker, grace_s=10)


def test_every_workers_acknowledgements_reach_the_masters_log(tmp_path: Path) -> None:
    """Two workers in another folder ship every acknowledgement to the master's log, including
    those of requests still in flight when the harness stops Locust; none is written where the
    workers run, and the timeline's totals equal Locust's."""
    port = free_port()
    master_dir, worker_dir, tally = tmp_path / "master", tmp_path / "workers", tmp_path / "tally"
    master_dir.mkdir()
    tally.mkdir()
    with open_slow_service(1.2) as url, open_workers(2, port, worker_dir):
        spec = LoadSpec(
            ACKING_LOCUSTFILE, url, users=20, spawn_rate=20, run_time_s=60, workers=2,
            master_bind=("127.0.0.1", port), join_timeout_s=60, extra_args=["--tally", str(tally)],
        )  # fmt: skip
        # Paths relative to the master's folder: a worker writing "run/acks.jsonl" itself would
        # write it in its own folder.
        result = LoadResult(Path("run"))
        with (master_dir / "locust.log").open("wb") as log:
            master = subprocess.Popen(
                process.locust_command(spec, result), cwd=master_dir, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
            try:
                result = LoadResult(master_dir / "run")
                assert process.wait_for_workers(master, result, spec) == 2
                time.sleep(6)
            finally:
                # As the engine stops it: SIGTERM to the master, while every user waits for an answer.
                code = children.stop_group(master, grace_s=30, leader_only=True)
        assert code in (0, 1), (master_dir / "locust.log").read_text()[-3000:]
        for _ in range(50):  # the workers write their tallies as they quit
            if len(list(tally.glob("tally-*.json"))) == 2:
                break
            time.sleep(0.2)
    recorded = {
        int(p.stem.split("-")[1]): json.loads(p.read_text())["recorded"] for p in tally.glob("tally-*.json")
    }
    assert len(recorded) == 2, "both workers recorded acknowledgements"
    lines = [json.loads(line) for line in result.acks.read_text().splitlines()]
    by_pid = {pid: sum(1 for line in lines if line["pid"] == pid) for pid in recorded}
    assert by_pid == recorded, "every acknowledgement a worker made is in the master's log"
    assert len({line["subscription_id"] for line in lines}) == len(lines)
    assert not list(worker_dir.rglob("acks.jsonl")), "workers write no log of their own"

    timeline = read_timeline(result.timeline)
    total = timeline.total()
    locust = read_locust_totals(result.stats_json)
    assert (total.requests, total.failures) == (locust.requests, locust.failures)
    assert total.requests >= len(lines) > 0
    assert timeline.header["workers_expected"] == 2
    assert timeline.end is not None and timeline.end["workers"] == 2


def test_a_master_short_of_workers_gives_up_with_the_count(tmp_path: Path) -> None:
    """Expecting two workers with one started: WorkersMissingError (exit 3) naming 1 of 2, and
    Locust is stopped."""
    port = free_port()
    with open_slow_service(0.0) as url, open_workers(1, port, tmp_path / "workers"):
        spec = LoadSpec(
            ACKING_LOCUSTFILE, url, users=4, spawn_rate=4, run_time_s=60, workers=2,
            master_bind=("127.0.0.1", port), join_timeout_s=8,
        )  # fmt: skip
        started = time.monotonic()
        with (
            pytest.raises(process.WorkersMissingError) as caught,
            process.open_load(spec, tmp_path / "run") as (_master, _result),
        ):
            pytest.fail("the load started without its workers")
        waited = time.monotonic() - started
    exc = caught.value
    assert (exc.joined, exc.expected, exc.exit_code) == (1, 2, 3)
    assert f"1 of 2 Locust workers joined the master at 127.0.0.1:{port} within 8 s" in str(exc)
    assert 8 <= waited < 8 + 40
    timeline = read_timeline(tmp_path / "run" / "timeline.jsonl")
    assert timeline.total().requests == 0, "no load flowed"


def test_one_worker_command_serves_consecutive_masters(tmp_path: Path) -> None:
    """A plan runs one master per scenario: `harness load worker` joins the first, quits with it
    (the master's drain makes sure its quit reaches the worker) and joins the next within seconds."""
    port = free_port()
    with open_slow_service(0.0) as url, open_workers(1, port, tmp_path / "workers", runs=2) as (worker,):
        for scenario in ("first", "second"):
            spec = LoadSpec(
                ACKING_LOCUSTFILE, url, users=4, spawn_rate=4, run_time_s=4, workers=1,
                master_bind=("127.0.0.1", port), join_timeout_s=20,
            )  # fmt: skip
            started = time.monotonic()
            result = process.run_load(spec, tmp_path / scenario)
            assert result.workers_joined == 1, scenario
            assert time.monotonic() - started < 4 + 20, (
                "the worker rejoined without waiting for a heartbeat timeout"
            )
            timeline = read_timeline(result.timeline)
            assert timeline.total().requests > 0 and timeline.end is not None
            assert timeline.end["workers"] == 1
        assert worker.wait(30) == 0, "the worker command ended after its two runs"

"""harness.load.process with workers: the master's command line, the bounded wait, `harness load worker`."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.load import process
from harness.load.process import LoadResult, LoadSpec

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "subscriptions.py"


class FakeProcess:
    """A Locust process that is still running (returncode None) or has exited."""

    def __init__(self, returncode: int | None = None) -> None:
        self.returncode = returncode

    def poll(self) -> int | None:
        return self.returncode


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0  # every look at the clock is a second later
        return self.now


def write_timeline(path: Path, *joined: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [{"type": "header", "schema": "harness.timeline/v1", "bucket_s": 1.0, "workers_expected": 2}]
    lines += [{"type": "workers", "t": 1.0 + i, "joined": n, "expected": 2} for i, n in enumerate(joined)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


class TestMasterCommand:
    def test_workers_make_a_master_that_waits_for_them(self, tmp_path: Path) -> None:
        """With workers: --master, --expect-workers, the bind address, and Locust's own give-up after the harness's."""
        spec = LoadSpec(LOCUSTFILE, "http://svc", workers=3, master_bind=("0.0.0.0", 5600), join_timeout_s=45)
        command = process.locust_command(spec, LoadResult(tmp_path))
        assert "--master" in command and "--processes" not in command
        flags = dict(itertools.pairwise(command))
        assert flags["--expect-workers"] == "3"
        assert (flags["--master-bind-host"], flags["--master-bind-port"]) == ("0.0.0.0", "5600")
        assert float(flags["--expect-workers-max-wait"]) > 45
        assert flags["--acks"] == str(tmp_path / "acks.jsonl")

    def test_local_load_has_no_master(self, tmp_path: Path) -> None:
        """Without workers: one process, or --processes N on this host."""
        one = process.locust_command(LoadSpec(LOCUSTFILE, "http://svc"), LoadResult(tmp_path))
        assert "--master" not in one and "--processes" not in one
        two = process.locust_command(LoadSpec(LOCUSTFILE, "http://svc", processes=2), LoadResult(tmp_path))
        assert "--master" not in two and two[two.index("--processes") + 1] == "2"

    def test_worker_command_names_the_master(self) -> None:
        """A worker needs only the locustfile and where the master is; the rest comes from the master."""
        command = process.worker_command(LOCUSTFILE, ("10.0.0.5", 5557), processes=4)
        flags = dict(itertools.pairwise(command))
        assert "--worker" in command
        assert (flags["--master-host"], flags["--master-port"], flags["--processes"]) == (
            "10.0.0.5",
            "5557",
            "4",
        )
        assert "--host" not in command and "-u" not in command


class TestWaitForWorkers:
    def spec(self) -> LoadSpec:
        return LoadSpec(LOCUSTFILE, "http://svc", workers=2, master_bind=("0.0.0.0", 5557), join_timeout_s=10)

    def test_returns_when_all_joined(self, tmp_path: Path) -> None:
        """The last workers line counts: 1, then 2 of 2 joined."""
        result = LoadResult(tmp_path)
        write_timeline(result.timeline, 1, 2)
        assert process.wait_for_workers(FakeProcess(), result, self.spec(), FakeClock(), poll_s=0) == 2

    def test_gives_up_with_the_count_after_the_timeout(self, tmp_path: Path) -> None:
        """One of two joined: WorkersMissingError, exit 3, naming 1 of 2, the address, the timeout and the log."""
        result = LoadResult(tmp_path)
        write_timeline(result.timeline, 1)
        clock = FakeClock()
        with pytest.raises(process.WorkersMissingError) as caught:
            process.wait_for_workers(FakeProcess(), result, self.spec(), clock, poll_s=0)
        exc = caught.value
        assert (exc.joined, exc.expected, exc.exit_code) == (1, 2, 3)
        assert str(exc).startswith("1 of 2 Locust workers joined the master at 0.0.0.0:5557 within 10 s")
        assert str(result.log) in str(exc)
        assert clock.now >= 10

    def test_no_timeline_yet_is_none_joined(self, tmp_path: Path) -> None:
        """Before Locust writes its header, nobody has joined."""
        with pytest.raises(process.WorkersMissingError, match=r"^0 of 2"):
            process.wait_for_workers(FakeProcess(), LoadResult(tmp_path), self.spec(), FakeClock(), poll_s=0)

    def test_locust_exiting_while_waiting_is_an_error(self, tmp_path: Path) -> None:
        """A master that exited (bad option, port taken) is reported at once, with its exit code."""
        result = LoadResult(tmp_path)
        write_timeline(result.timeline, 1)
        with pytest.raises(process.HarnessError, match=r"Locust exited \(code 1\) while waiting for workers"):
            process.wait_for_workers(FakeProcess(returncode=1), result, self.spec(), FakeClock(), poll_s=0)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--master", "nohost"], "--master: expected HOST:PORT"),
        (["--master", "host:0"], "--master: expected HOST:PORT"),
        (
            ["--master", "host:5557", "--locustfile", "/nonexistent.py"],
            "--locustfile: /nonexistent.py does not exist",
        ),
    ],
)
def test_load_worker_bad_input_exits_2(args: list[str], needle: str) -> None:
    """`harness load worker` names the bad flag and exits 2, without a traceback."""
    done = subprocess.run(
        [sys.executable, "-m", "harness", "load", "worker", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert needle in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr

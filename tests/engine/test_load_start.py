"""The warm-up waits for the load to flow: a Locust that starts late does not leave the baseline empty."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.engine import abort, runner
from harness.errors import HarnessError
from tests.report.conftest import Spec, write_timeline


class Locust:
    def __init__(self, code: int | None = None) -> None:
        self.returncode = code

    def poll(self) -> int | None:
        return self.returncode


def engine() -> Any:
    return SimpleNamespace(_tick=lambda live: live.update())


def first_bucket_later(path: Path, after_s: float) -> float:
    """Write the recorder's first seconds of load `after_s` from now; the load's start time."""
    start = float(math.ceil(time.time() + after_s))  # on the bucket grid, as the recorder's buckets are
    after_s = start - time.time()
    staged = path.with_suffix(".staged")
    write_timeline(staged, Spec("warm", seconds=1), seed=1)
    lines = [json.loads(line) for line in staged.read_text().splitlines()]
    shift = start - lines[1]["t"]
    for line in lines[1:]:
        line["t"] += shift
    lines[0]["started"] += shift

    def write() -> None:
        time.sleep(after_s)
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    threading.Thread(target=write, daemon=True).start()
    return start


def test_the_warmup_lasts_until_load_has_flowed_for_half_of_it(tmp_path: Path) -> None:
    """Load that starts 1 s late with a 2 s warm-up: the baseline starts 1 s after the load did."""
    path = tmp_path / "timeline.jsonl"
    started = first_bucket_later(path, 1.0)
    runner.Engine._until_load_flows(engine(), 2.0, Locust(), abort.LiveSeries(path))
    assert time.time() >= started + 1.0


def test_locust_exiting_before_any_load_is_an_error_naming_its_log(tmp_path: Path) -> None:
    with pytest.raises(HarnessError, match=r"Locust exited early \(code 2\).*locust.log"):
        runner.Engine._until_load_flows(engine(), 2.0, Locust(2), abort.LiveSeries(tmp_path / "none.jsonl"))


def test_no_load_at_all_is_an_error_after_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "LOAD_START_TIMEOUT_S", 0.5)
    with pytest.raises(HarnessError, match=r"no load within 0.5 s of starting Locust"):
        runner.Engine._until_load_flows(engine(), 2.0, Locust(), abort.LiveSeries(tmp_path / "none.jsonl"))

"""A plan's load.shape reaches Locust: a step plan really steps its users (it used to be
validated and then run as constant load)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from harness.load.process import SHAPE_FILE, LoadResult, LoadSpec, locust_command, run_load
from tests.conftest import LOCUSTFILE
from tests.load.loopback import QuietHandler, serve

pytestmark = pytest.mark.slow


def test_constant_load_runs_the_locustfile_alone(tmp_path: Path) -> None:
    command = locust_command(LoadSpec(LOCUSTFILE, "http://127.0.0.1:1"), LoadResult(tmp_path))
    assert command[command.index("-f") + 1] == str(LOCUSTFILE) and "--shape" not in command


def test_a_shape_adds_the_shape_file_and_its_options(tmp_path: Path) -> None:
    spec = LoadSpec(LOCUSTFILE, "http://127.0.0.1:1", users=12, shape="spike", shape_duration_s=90)
    command = locust_command(spec, LoadResult(tmp_path))
    assert command[command.index("-f") + 1] == f"{LOCUSTFILE},{SHAPE_FILE}"
    assert command[command.index("--shape") + 1] == "spike"
    assert command[command.index("--shape-users") + 1] == "12"
    assert command[command.index("--shape-duration") + 1] == "90"
    assert "--shape-hold" in command


def test_a_step_shape_steps_the_users_and_holds_its_last_level(tmp_path: Path) -> None:
    """4 steps of 2 s up to 8 users, then held: Locust's own user counts over time show them."""
    with serve(QuietHandler) as url:
        spec = LoadSpec(
            LOCUSTFILE,
            url,
            users=8,
            spawn_rate=8,
            run_time_s=12,
            shape="step",
            shape_duration_s=8,
            pacing_s=0.5,
        )
        result = run_load(spec, tmp_path / "run")
    assert result.returncode in (0, 1), result.log.read_text()[-3000:]
    with open(f"{result.csv_prefix}_stats_history.csv") as fh:
        users = [int(row["User Count"]) for row in csv.DictReader(fh) if row["Name"] == "Aggregated"]
    assert users, "Locust wrote its history"
    levels = sorted(set(users) - {0})
    assert levels[0] <= 4 and levels[-1] == 8, users  # stepped up from a fraction of the users
    assert len(levels) >= 3, users
    assert users[-1] == 8, "held at the last level after the profile's 8 s, until the run ended"

"""Real run folders, scored again, give the files users already have, byte for byte.

`tests/fixtures/runs` holds three runs of the bundled testbed plans as the harness wrote them
(local-quick, release-gate, local-gameday). `harness score` must reproduce their result.json,
summary.md and junit.xml exactly, and report.html (scored with an empty history) up to its
"Generated <time>" line: a change inside the harness that changes a user's numbers or files
fails here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUNS = Path(__file__).parent.parent / "fixtures" / "runs"
RUN_DIRS = sorted(p for p in RUNS.iterdir() if p.is_dir())
GENERATED = re.compile(rb"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


@pytest.fixture(params=RUN_DIRS, ids=lambda p: p.name.split("-", 1)[1].rsplit("-", 1)[0])
def rescored(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, Path]:
    original: Path = request.param
    copy = tmp_path / original.name
    shutil.copytree(original, copy)
    for name in ("summary.md", "junit.xml", "report.html"):
        (copy / name).unlink()
    (copy / "result.json").touch()  # score reads the run's facts from it, then writes it anew
    before = (copy / "result.json").stat().st_mtime_ns
    done = subprocess.run(
        [sys.executable, "-m", "harness", "score", str(copy), "--history", f"sqlite:///{tmp_path / 'h.sqlite'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (copy / "result.json").stat().st_mtime_ns != before
    return original, copy


def test_three_bundled_plans_are_kept() -> None:
    assert {p.name.split("-", 1)[1].rsplit("-", 1)[0] for p in RUN_DIRS} == {
        "local-quick", "release-gate", "local-gameday",
    }  # fmt: skip


@pytest.mark.parametrize("name", ["result.json", "summary.md", "junit.xml"])
def test_rescoring_gives_the_same_bytes(rescored: tuple[Path, Path], name: str) -> None:
    original, copy = rescored
    assert (copy / name).read_bytes() == (original / name).read_bytes()


def test_report_is_the_same_but_for_its_time(rescored: tuple[Path, Path]) -> None:
    original, copy = rescored
    before = GENERATED.sub(b"Generated", (original / "report.html").read_bytes())
    after = GENERATED.sub(b"Generated", (copy / "report.html").read_bytes())
    assert after == before

"""A damaged run folder scored again: `harness score` says which file (and line) it cannot read,
exits 3, and leaves the result users already have as it was — never good metrics replaced with
null, never a scenario dropped and the run passed."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

RUN = Path(__file__).parent.parent / "fixtures" / "runs" / "20261202T174427Z-local-quick-ffa8"
SCENARIO = "scenarios/replica-kill-1"


def _bad_line(path: Path, number: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = text + "\n"
    path.write_text("".join(lines))


def _edited(path: Path, number: int, pattern: str, replacement: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[number - 1] = re.sub(pattern, replacement, lines[number - 1], count=1)
    path.write_text("".join(lines))


def _header_only(path: Path) -> None:
    path.write_text(path.read_text().splitlines(keepends=True)[0])


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "timeline line": (
        lambda r: _bad_line(r / SCENARIO / "timeline.jsonl", 5, "{garbage"),
        "timeline.jsonl:5:",
    ),
    "markers line": (lambda r: _bad_line(r / SCENARIO / "markers.jsonl", 3, '{"t": nan'), "markers.jsonl:3:"),
    "scenario.json gone": (lambda r: (r / SCENARIO / "scenario.json").unlink(), "scenario.json: missing"),
    "timeline gone": (lambda r: (r / SCENARIO / "timeline.jsonl").unlink(), "timeline.jsonl"),
    "header-only timeline": (lambda r: _header_only(r / SCENARIO / "timeline.jsonl"), "no buckets"),
    "NaN marker time": (
        lambda r: _edited(r / SCENARIO / "markers.jsonl", 4, r'"t": *[0-9.]+', '"t": NaN'),
        "markers.jsonl:4: marker time t=nan",
    ),
    "negative requests": (
        lambda r: _edited(r / SCENARIO / "timeline.jsonl", 2, r'"requests":[0-9]+', '"requests":-5'),
        "timeline.jsonl:2: requests=-5",
    ),
    "more failures than requests": (
        lambda r: _edited(r / SCENARIO / "timeline.jsonl", 2, r'"failures":[0-9]+', '"failures":100000'),
        "failures must not exceed requests",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_score_names_the_file_exits_3_and_keeps_the_result(tmp_path: Path, damage: str) -> None:
    run = tmp_path / RUN.name
    shutil.copytree(RUN, run)
    kept = {name: (run / name).read_bytes() for name in ("result.json", "summary.md", "junit.xml")}
    harm, named = DAMAGE[damage]
    harm(run)
    done = subprocess.run(
        [sys.executable, "-m", "harness", "score", str(run), "--history", f"sqlite:///{tmp_path / 'h.sqlite'}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 3, done.stdout + done.stderr
    assert named in done.stderr and "left as they were" in done.stderr
    assert "Traceback" not in done.stderr
    assert {name: (run / name).read_bytes() for name in kept} == kept

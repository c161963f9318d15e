"""The `harness` command as users run it: exit codes, messages, no tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import __version__


def harness(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *args], capture_output=True, text=True, timeout=timeout
    )


def test_version_and_help() -> None:
    """--version prints the version; --help lists the commands."""
    assert harness("--version").stdout.strip() == f"harness {__version__}"
    help_text = harness("--help").stdout
    assert "app" in help_text and "load" in help_text


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["load", "run", "--bogus"], "No such option: --bogus"),
        (["load", "run", "--users", "0"], "--users"),
        (
            ["load", "run", "--locustfile", "/nonexistent/locustfile.py"],
            "--locustfile: /nonexistent/locustfile.py does not exist",
        ),
        (["app", "serve", "--db", "mysql://x"], "--db: "),
        (["timeline", "summary", "/nonexistent.jsonl"], "/nonexistent.jsonl: no such timeline file"),
        # Messages are not Rich markup: a "[/...]" in a path once raised a MarkupError traceback.
        (
            ["timeline", "summary", "/nonexistent/[/x].jsonl"],
            "/nonexistent/[/x].jsonl: no such timeline file",
        ),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_traceback(args: list[str], needle: str) -> None:
    """Bad flags and files name what is wrong, exit 2, and print no traceback."""
    result = harness(*args)
    assert result.returncode == 2
    output = result.stdout + result.stderr
    assert needle in output
    assert "Traceback" not in output


def test_corrupt_timeline_names_file_and_line(tmp_path: Path) -> None:
    """A corrupt timeline line is reported with file and line number."""
    bad = tmp_path / "t.jsonl"
    bad.write_text('{"type": "header", "schema": "harness.timeline/v1"}\n{broken\n{"type": "end", "t": 1}\n')
    result = harness("timeline", "summary", str(bad))
    assert result.returncode == 2
    assert f"{bad}:2: not a JSON object" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_load_run_starts_the_service_and_prints_the_timeline(tmp_path: Path) -> None:
    """The README's main command runs load against a local service and says where the timeline is."""
    result = harness("load", "run", "--duration", "6", "--users", "10", "--out", str(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"timeline: {tmp_path / 'timeline.jsonl'}" in result.stdout
    assert "subscriptions completed" in result.stdout
    summary = harness("timeline", "summary", str(tmp_path / "timeline.jsonl"))
    assert summary.returncode == 0 and "p99" in summary.stdout


def test_list_names_every_bundled_plan_and_experiment_with_its_title() -> None:
    """`harness list` shows what `harness run NAME` accepts and what each experiment does."""
    import yaml

    from harness.plan.loading import PLANS_DIR

    listing = harness("list").stdout
    flat = " ".join(listing.split())  # rich wraps long titles
    for plan in PLANS_DIR.glob("*.yaml"):
        assert plan.stem in listing
    for experiment in (PLANS_DIR.parent / "local").glob("*.yaml"):
        assert f"experiments/local/{experiment.name}" in listing
        title = yaml.safe_load(experiment.read_text())["title"]
        assert " ".join(title.split()) in flat


def test_trials_out_of_range_is_refused_before_anything_runs(tmp_path: Path) -> None:
    result = harness("run", "local-quick", "--trials", "0", "--reports", str(tmp_path))
    assert result.returncode == 2
    assert "--trials" in result.stderr
    assert not any(tmp_path.iterdir())


def test_reports_and_history_default_to_the_working_directory(tmp_path: Path) -> None:
    """Without --reports or --history, the history is ./reports/history.sqlite where the command
    runs (a CI job's workspace), not in the folder the harness is installed in."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "HARNESS_HISTORY_URL"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    listed = subprocess.run(
        [sys.executable, "-m", "harness", "history"], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "history: no runs recorded" in listed.stdout
    assert (tmp_path / "reports" / "history.sqlite").is_file()

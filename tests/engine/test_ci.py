"""What a CI job reads from `harness gate`: the paths of the files it publishes, and summary.md
appended to GitHub's job summary when $GITHUB_STEP_SUMMARY names one."""

from __future__ import annotations

from pathlib import Path

from harness.engine import ci


def run_folder(tmp: Path, summary: str | None = "# Resilience run `r`: PASSED\n") -> Path:
    folder = tmp / "reports" / "r"
    folder.mkdir(parents=True)
    if summary is not None:
        (folder / "summary.md").write_text(summary)
    return folder


def test_path_lines_name_the_summary_and_the_junit_file(tmp_path: Path) -> None:
    """One `NAME: PATH` line per file a later step publishes."""
    folder = run_folder(tmp_path)
    assert ci.path_lines(folder) == [f"summary: {folder / 'summary.md'}", f"junit: {folder / 'junit.xml'}"]


def test_the_summary_is_appended_to_the_job_summary(tmp_path: Path) -> None:
    """What earlier steps wrote to the job summary stays; the run's summary follows it."""
    folder = run_folder(tmp_path)
    page = tmp_path / "step-summary.md"
    page.write_text("earlier step\n")
    assert ci.append_step_summary(folder, {ci.STEP_SUMMARY_ENV: str(page)}) == page
    assert page.read_text() == "earlier step\n# Resilience run `r`: PASSED\n"


def test_nothing_is_written_outside_github_or_without_a_summary(tmp_path: Path) -> None:
    """No $GITHUB_STEP_SUMMARY, or a run that wrote no summary: nothing to append."""
    page = tmp_path / "step-summary.md"
    assert ci.append_step_summary(run_folder(tmp_path), {}) is None
    assert ci.append_step_summary(run_folder(tmp_path / "x", None), {ci.STEP_SUMMARY_ENV: str(page)}) is None
    assert not page.exists()

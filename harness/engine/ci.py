"""What a CI job needs from `harness gate`: where the run's files are, and its summary on the job's page.

`harness gate` prints one `NAME: PATH` line per file a later step publishes (`summary:`,
`junit:`, beside `run folder:` and `report:`), so a step can take a path with
`sed -n 's/^junit: //p'`. On GitHub Actions, $GITHUB_STEP_SUMMARY names a file whose Markdown
the run's page shows; summary.md is appended to it, so the verdict and its table are there
without opening an artifact (links in it follow $HARNESS_REPORT_URL, see harness.report.markdown).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"
SUMMARY = "summary.md"
JUNIT = "junit.xml"


def path_lines(run_dir: Path) -> list[str]:
    """The lines naming the files a CI step publishes: the Markdown summary and the JUnit XML."""
    return [f"summary: {run_dir / SUMMARY}", f"junit: {run_dir / JUNIT}"]


def append_step_summary(run_dir: Path, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Append summary.md to the file $GITHUB_STEP_SUMMARY names; that file, or None when the
    variable is unset or the run wrote no summary. OSError when the file cannot be written."""
    target = environ.get(STEP_SUMMARY_ENV)
    summary = run_dir / SUMMARY
    if not target or not summary.is_file():
        return None
    text = summary.read_text(encoding="utf-8")
    with open(target, "a", encoding="utf-8") as file:
        file.write(text if text.endswith("\n") else text + "\n")
    return Path(target)

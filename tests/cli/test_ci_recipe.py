"""docs/ci.md's GitHub Actions recipe, run as written: its steps between the `ci-recipe` markers,
in their order, in an empty folder, with `harness` on PATH and $GITHUB_STEP_SUMMARY set.

`run:` steps run as GitHub runs them (bash -e -o pipefail), a step without `if: always()` only
while every earlier one succeeded; `uses:` steps cannot run here, so the files they would publish
or cache must exist. The gate runs the bundled `release-gate` on a testbed of its own.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.testbed import cluster

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "ci.md"


def recipe_steps() -> list[dict[str, Any]]:
    """The GitHub snippet's steps between `# ci-recipe: begin` and `# ci-recipe: end`."""
    snippet = DOC.read_text().split("## GitHub Actions", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    region = re.search(r"# ci-recipe: begin\n(.*?)\n\s*# ci-recipe: end", snippet, re.S)
    assert region, "docs/ci.md: the GitHub snippet marks its steps with # ci-recipe: begin/end"
    steps = yaml.safe_load(textwrap.dedent(region.group(1)))
    assert isinstance(steps, list) and all(isinstance(s, dict) for s in steps), steps
    return steps


def published(step: dict[str, Any]) -> list[str]:
    """The path patterns a `uses:` step caches, uploads or reports."""
    given = step.get("with") or {}
    text = "\n".join(str(given[k]) for k in ("path", "report_paths") if k in given)
    return [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("!")]


def test_the_recipe_names_the_gate_and_publishes_what_it_writes() -> None:
    """The marked steps run the release gate, publish its JUnit and report, and keep the history
    with a per-branch cache that is restored before the gate and saved after it, even on failure."""
    steps = recipe_steps()
    runs = [s["run"] for s in steps if "run" in s]
    assert any("harness gate release-gate" in r for r in runs), runs
    uses = {s["uses"].split("@")[0]: s for s in steps if "uses" in s}
    assert {"actions/cache/restore", "actions/cache/save", "actions/upload-artifact"} <= set(uses)
    order = [s.get("uses", "run").split("@")[0] for s in steps]
    gate = next(i for i, s in enumerate(steps) if "harness gate" in s.get("run", ""))
    assert order.index("actions/cache/restore") < gate < order.index("actions/cache/save")
    for name in ("actions/cache/save", "actions/upload-artifact"):
        assert uses[name].get("if") == "always()", f"{name} runs also when the gate failed"
    assert "${{ github.ref_name }}" in uses["actions/cache/save"]["with"]["key"], "keyed per branch"
    assert any("junit.xml" in p for s in steps if "uses" in s for p in published(s))


def test_the_recipe_gates_a_release_and_leaves_what_ci_publishes(tmp_path: Path) -> None:
    """In an empty folder, the recipe's commands run the bundled release gate to completion (exit 0
    or 1, a verdict either way): the job summary gets summary.md, every file a later step caches,
    uploads or reports exists, the history recorded the run, and the testbed is gone."""
    work, bin_dir, testbed = tmp_path / "workspace", tmp_path / "bin", tmp_path / "testbed"
    work.mkdir()
    bin_dir.mkdir()
    harness = bin_dir / "harness"  # the `harness` a pip install puts on PATH, from this checkout
    harness.write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -m harness "$@"\n')
    harness.chmod(0o755)
    step_summary = tmp_path / "step-summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HARNESS_", "GITHUB_"))}
    env.update(
        PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
        PYTHONPATH=str(ROOT),
        HARNESS_TESTBED_DIR=str(testbed),
        GITHUB_STEP_SUMMARY=str(step_summary),
        CI="true",
    )

    failed, log = False, []
    try:
        for step in recipe_steps():
            if "run" not in step or (failed and step.get("if") != "always()"):
                continue
            done = subprocess.run(
                ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                cwd=work, env=env, capture_output=True, text=True, timeout=900,
            )  # fmt: skip
            log.append((step["run"], done))
            failed = failed or done.returncode != 0
    finally:
        if (testbed / "testbed.json").exists():  # a gate that broke off left its testbed up
            cluster.down(testbed)

    (command, gate), *_ = [(c, d) for c, d in log if "harness gate" in c]
    output = gate.stdout + gate.stderr
    assert gate.returncode in (0, 1), output[-3000:]
    assert "Traceback" not in output
    assert all(d.returncode == 0 for c, d in log if c != command), log
    assert not (testbed / "testbed.json").exists(), "the gate took down the testbed it brought up"

    paths = dict(line.split(": ", 1) for line in gate.stdout.splitlines() if ": " in line)
    run_dir = work / paths["run folder"]
    assert run_dir.parent == work / "reports", "run folders go to ./reports where the gate runs"
    for name, file in (("summary", "summary.md"), ("junit", "junit.xml"), ("report", "report.html")):
        assert work / paths[name] == run_dir / file and (run_dir / file).is_file(), name

    result = json.loads((run_dir / "result.json").read_text())
    assert result["plan"]["name"] == "release-gate" and result["status"] == "completed"
    assert gate.returncode == (0 if result["passed"] else 1)
    summary = (run_dir / "summary.md").read_text()
    assert step_summary.read_text() == summary, "the job summary holds the run's summary.md"

    for step in recipe_steps():
        for pattern in published(step) if "uses" in step else []:
            assert glob.glob(pattern, root_dir=work), f"{step['uses']}: nothing at {pattern}"
    with sqlite3.connect(work / "reports" / "history.sqlite") as db:
        recorded = db.execute("SELECT run_id, plan FROM runs").fetchall()
    assert recorded == [(run_dir.name, "release-gate")], "the cached history holds this run"

    # The report itself (offline, charts drawn, printed) is opened in a browser by
    # tests/report/test_browser.py on the session's real run.
    assert (run_dir / "report.html").stat().st_size > 0

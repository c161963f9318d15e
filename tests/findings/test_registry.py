"""The registry: stable ids, a reason per rule, the docs table in step, the trial arithmetic
in step with the comparison's, and findings read back from a recorded run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from harness import findings
from harness.compare import stats
from harness.findings import run
from harness.result import files as result_files
from harness.store import rundir

ROOT = Path(__file__).parents[2]
DOCS = ROOT / "docs" / "findings.md"
FIXTURES = ROOT / "tests" / "fixtures" / "runs"


def test_ids_are_unique_and_kebab_case() -> None:
    """Ids are what compare and people key on: unique, lower-case words joined by hyphens."""
    ids = [r.id for r in findings.RULES]
    assert len(ids) == len(set(ids)) >= 12
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids), ids


def test_every_rule_says_why_and_what_it_reads() -> None:
    """Each rule's check has a docstring (its reason) and names its inputs."""
    for rule in findings.RULES:
        assert len(rule.why) > 40, rule.id
        assert rule.reads, rule.id


def _docs_table() -> str:
    text = DOCS.read_text()
    start = text.index("<!-- findings-registry:begin")
    start = text.index("\n", start) + 1
    return text[start : text.index("<!-- findings-registry:end -->")].strip()


def test_the_docs_table_is_the_registry() -> None:
    """docs/findings.md lists exactly the registry's rules, as `markdown_table` prints them."""
    assert _docs_table() == findings.markdown_table(), (
        "docs/findings.md is out of date: paste findings.markdown_table() between the findings-registry markers"
    )


@pytest.mark.parametrize("trials", [1, 2, 3, 4, 5, 7, 10])
def test_smallest_p_is_the_comparisons(trials: int) -> None:
    """The trial rule's smallest p and trials needed are the comparison statistics' own."""
    assert run.min_p_value(trials) == pytest.approx(stats.min_p_value(trials, trials))
    level = 0.05 / trials
    assert run.trials_needed(level) == stats.min_trials_for(level)


def test_findings_of_a_recorded_run(tmp_path: Path) -> None:
    """A recorded game day's result lists its findings: the zone latency's latency-only impact and
    the run's too few trials; an older result without them gets the same, worked out on reading."""
    source = FIXTURES / "20261202T174601Z-local-gameday-8afa"
    result = result_files.read(source / "result.json")
    plan = rundir.read_json(source / "plan.json")
    listed = findings.of_result(result, plan)
    where = {(x.where, x.finding.id) for x in listed}
    assert ("zone-latency#1", "latency-only-impact") in where
    assert ("run", "too-few-trials") in where
    # The node crash: detection took the node grace period, capacity came back only at eviction.
    assert ("node-crash#1", "detection-dominates-recovery") in where
    assert ("node-crash#1", "capacity-reduced-until-eviction") in where
    old = tmp_path / "old"
    shutil.copytree(source, old)
    content = result.to_json()
    content.pop("findings")
    for s in content["scenarios"]:
        s.pop("findings")
    recomputed = findings.of_result(result_files.parse(content, old / "result.json"), plan)
    assert [(x.where, x.finding) for x in recomputed] == [(x.where, x.finding) for x in listed]

"""A run folder read into the report's values, and secrets masked where run files are written and
read: nothing the report shows holds a password, a token or a URL's password."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from harness import redaction
from harness.engine import runner
from harness.errors import FileInputError
from harness.plan.models import Plan
from harness.report import html, inputs
from harness.store import rundir, runview
from tests.report.conftest import SECRETS, Spec, build_run, journal

ROOT = Path(__file__).resolve().parents[2]
PLAN_WITH_SECRETS = {
    "name": "p",
    "load": {"host": "https://load:lp-5b4a3c2d1e0f@shop.example"},
    "scenarios": [{"name": "kill", "vars": {"db_password": "pv-0a1b2c3d4e5f", "zone": "zone-a"}}],
}


def all_text(value: object) -> str:
    return json.dumps(value, default=lambda v: v.__dict__ if hasattr(v, "__dict__") else str(v))


class TestRead:
    def test_each_trial_of_the_result_gets_its_files_as_values(self, tmp_path: Path) -> None:
        """Markers, timeline, journal activities and probes, control-plane records: per (name, trial)."""
        run_dir, result = build_run(tmp_path, [Spec("kill", trials=2, controlplane=True)])
        got = runview.read(run_dir)
        assert set(got.trials) == {("kill", 1), ("kill", 2)}
        assert got.result["scenarios"] == result["scenarios"] and got.plan["name"] == "report-test"
        trial = got.trials[("kill", 2)]
        assert [m["kind"] for m in trial.markers][:3] == ["phase", "phase", "phase"]
        assert len(trial.series) == 120
        assert isinstance(trial.journal, inputs.Journal)
        assert [(a.section, a.name) for a in trial.journal.activities] == [
            ("method", "kill-a-replica"), ("rollbacks", "wait-until-serving")]  # fmt: skip
        assert trial.journal.before.met is True and [p.name for p in trial.journal.before.probes] == [
            "answers"
        ]
        assert trial.journal.activities[0].has_output and not trial.journal.activities[0].has_tolerance
        assert {r["kind"] for r in trial.controlplane} == {"api", "health", "node", "pod", "deployment"}

    def test_missing_and_unreadable_files_are_recorded_as_missing(self, tmp_path: Path) -> None:
        """An absent file is Missing without a problem; one that cannot be read says why."""
        run_dir, _ = build_run(tmp_path, [Spec("bare", files=set()), Spec("torn")])
        torn = rundir.scenario_dir(run_dir, "torn", 1)
        (torn / "markers.jsonl").write_text('{"t": 1}\nnot json\n{"t": 2}\n')
        (torn / "journal.json").write_text("{")
        bare = runview.read(run_dir).trials[("bare", 1)]
        assert bare.markers == inputs.Missing("markers.jsonl")
        assert bare.series == inputs.Missing("timeline.jsonl")
        assert bare.journal == inputs.Missing("journal.json") and bare.controlplane == []
        got = runview.read(run_dir).trials[("torn", 1)]
        assert (
            got.markers.file == "markers.jsonl"
            and "markers.jsonl:2: not a JSON object" in got.markers.problem
        )
        assert got.journal.file == "journal.json" and got.journal.problem

    def test_no_result_json_is_an_error_naming_the_file(self, tmp_path: Path) -> None:
        """Without result.json (and none given) the reader says which file is missing."""
        with pytest.raises(FileInputError, match=r"result\.json"):
            runview.read(tmp_path)


class TestSecretsWhereRead:
    def test_an_old_run_folder_is_masked_as_it_is_read(self, tmp_path: Path) -> None:
        """A folder written unmasked (journal, plan vars, target token and URL password) reads masked."""
        run_dir, _ = build_run(tmp_path, [Spec("kill")])
        on_disk = "".join(p.read_text() for p in run_dir.rglob("*.json"))
        planted = [SECRETS[k] for k in ("journal_secret", "activity_password", "plan_var_password",
                                        "target_token", "target_url_password", "journal_url_password")]  # fmt: skip
        assert all(secret in on_disk for secret in planted), "the folder holds them, as old versions wrote"
        got = runview.read(run_dir)
        text = all_text({"result": got.result, "plan": got.plan, "trials": list(got.trials.values())})
        assert not [secret for secret in planted if secret in text]
        assert got.result["target"]["url"] == "http://admin:***@127.0.0.1:18080"
        assert got.plan["scenarios"][0]["vars"] == {"db_password": "<redacted>", "zone": "zone-a"}
        assert got.trials[("kill", 1)].journal.configuration["node"] == "node-a1"  # the rest stays readable

    def test_harness_report_rewrites_an_old_result_masked(self, tmp_path: Path) -> None:
        """`harness report RUN_DIR` on an old folder: result.json and report.html without the target's secrets."""
        run_dir, _ = build_run(tmp_path, [Spec("kill")])
        runner.rerender(run_dir)
        for name in ("result.json", "report.html"):
            text = (run_dir / name).read_text()
            assert SECRETS["target_token"] not in text and SECRETS["target_url_password"] not in text, name


class TestSecretsWhereWritten:
    def test_the_plan_copy_is_masked_at_every_depth(self, tmp_path: Path) -> None:
        """plan.json: vars named like a secret are <redacted>, a URL's password is ***."""
        rundir.write_plan(tmp_path, PLAN_WITH_SECRETS)
        text = (tmp_path / rundir.PLAN).read_text()
        assert "pv-0a1b2c3d4e5f" not in text and "lp-5b4a3c2d1e0f" not in text
        written = json.loads(text)
        assert written["load"]["host"] == "https://load:***@shop.example"
        assert written["scenarios"][0]["vars"]["zone"] == "zone-a"

    def test_the_journal_is_masked_and_loses_its_secrets_block(self, tmp_path: Path) -> None:
        """journal.json: no secrets block, no secret-looking value, no URL password; the rest kept."""
        raw = journal(Spec("kill"))
        rundir.write_journal(tmp_path, raw)
        text = (tmp_path / rundir.JOURNAL).read_text()
        assert not [k for k, secret in SECRETS.items() if secret in text]
        written = json.loads(text)
        assert "secrets" not in written["experiment"]
        assert written["run"][0]["output"]["db"] == "postgresql://subs:***@db.internal/subs"
        assert written["experiment"]["configuration"]["node"] == "node-a1"

    def test_result_json_masks_the_targets_facts(self, tmp_path: Path) -> None:
        """The engine assembles result.json with the target's token and URL password masked."""
        run_dir, built = build_run(tmp_path, [Spec("kill")])
        plan = Plan.model_validate(json.loads((run_dir / rundir.PLAN).read_text()))
        head = {k: v for k, v in built.items() if k not in ("scenarios", "passed")}
        head["target"] = {"kind": "kubernetes", "cluster": "eks-a", "url": "https://u:kp-9f8e7d6c@api.example",
                          "session_token": "st-1f2e3d4c"}  # fmt: skip
        result = runner.assemble_result(run_dir, plan, head)
        assert result.to_json()["target"] == {"kind": "kubernetes", "cluster": "eks-a",
                                              "url": "https://u:***@api.example",
                                              "session_token": redaction.REDACTED}  # fmt: skip
        runner.write_outputs(run_dir, result)
        text = (run_dir / rundir.RESULT).read_text() + (run_dir / html.REPORT).read_text()
        assert not [s for s in ("kp-9f8e7d6c", "st-1f2e3d4c") if s in text]


def test_the_report_imports_no_store_and_no_chaos() -> None:
    """harness.report renders values: it reads no run folder (store) and masks nothing (chaos, redaction)."""
    found = {}
    for path in sorted((ROOT / "harness" / "report").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            bad = [n for n in names if n.startswith(("harness.store", "harness.chaos", "harness.redaction"))]
            if bad:
                found[path.name] = bad
    assert not found

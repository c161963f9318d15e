"""Journals are written into run folders and reports: no secret may survive in them, at any depth."""

from __future__ import annotations

import json
from pathlib import Path

from harness import redaction
from harness.store import rundir


def test_secrets_are_gone_from_every_depth_of_the_journal() -> None:
    journal = {
        "experiment": {
            "title": "t",
            "secrets": {"k8s": {"KUBERNETES_TOKEN": "s3cr3t-a"}},
            "configuration": {"api_token": "s3cr3t-b", "nested": {"db_password": "s3cr3t-c"}, "zone": "a"},
            "method": [{"provider": {"arguments": {"auth_header": "s3cr3t-d", "qty": 1}}}],
        },
        "run": [
            {"activity": {"provider": {"arguments": {"client_secret": "s3cr3t-e"}}}, "status": "succeeded"}
        ],
    }
    text = json.dumps(redaction.journal(journal))
    assert "s3cr3t" not in text
    kept = redaction.journal(journal)
    assert kept["experiment"]["configuration"]["zone"] == "a"  # what is not secret stays readable
    assert kept["experiment"]["method"][0]["provider"]["arguments"]["qty"] == 1
    assert kept["run"][0]["status"] == "succeeded"
    assert "s3cr3t-a" in json.dumps(journal)  # the caller's journal is not changed


def test_values_the_experiment_marks_secret_are_masked_under_any_key(tmp_path: Path) -> None:
    """The secrets block goes; its values, and secret-named configuration, are masked wherever they
    appear, even in an output under an innocent key; a URL's password too."""
    journal = {
        "experiment": {
            "secrets": {"a": {"token": "x1-secret-value"}},
            "configuration": {"db_password": "x2-db-pass", "aws_secret_access_key": "x3-key", "node": "n"},
        },
        "run": [
            {"output": {"echo": "got x1-secret-value and x2-db-pass", "db": "postgresql://u:x4-pw@db/s"}}
        ],
    }
    redacted = redaction.journal(journal)
    assert "secrets" not in redacted["experiment"]
    assert redacted["experiment"]["configuration"] == {
        "db_password": "<redacted>", "aws_secret_access_key": "<redacted>", "node": "n"}  # fmt: skip
    assert redacted["run"][0]["output"] == {"echo": "got *** and ***", "db": "postgresql://u:***@db/s"}
    rundir.write_journal(tmp_path, journal)
    assert json.loads((tmp_path / rundir.JOURNAL).read_text()) == redacted  # what the engine writes is this

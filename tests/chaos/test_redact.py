"""Journals are written into run folders and reports: no secret may survive in them, at any depth."""

from __future__ import annotations

import json

from harness.chaos.experiment import redact


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
    text = json.dumps(redact(journal))
    assert "s3cr3t" not in text
    kept = redact(journal)
    assert kept["experiment"]["configuration"]["zone"] == "a"  # what is not secret stays readable
    assert kept["experiment"]["method"][0]["provider"]["arguments"]["qty"] == 1
    assert kept["run"][0]["status"] == "succeeded"
    assert "s3cr3t-a" in json.dumps(journal)  # the caller's journal is not changed

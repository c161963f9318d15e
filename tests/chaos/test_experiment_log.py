"""chaoslib's log lines go to the scenario folder, not the console."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from harness.chaos import experiment as chaos_experiment

EXPERIMENT = {
    "version": "1.0.0",
    "title": "a probe and a rollback, nothing injected",
    "description": "runs in-process",
    "steady-state-hypothesis": {
        "title": "the path exists",
        "probes": [
            {
                "type": "probe",
                "name": "path-exists",
                "tolerance": True,
                "provider": {
                    "type": "python",
                    "module": "os.path",
                    "func": "exists",
                    "arguments": {"path": "/"},
                },
            }
        ],
    },
    "method": [
        {
            "type": "action",
            "name": "look-at-the-path",
            "provider": {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": "/"}},
        }
    ],
    "rollbacks": [
        {
            "type": "action",
            "name": "look-again",
            "provider": {"type": "python", "module": "os.path", "func": "exists", "arguments": {"path": "/"}},
        }
    ],
}


def test_chaoslib_warnings_reach_the_log_file_not_the_console(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The rollback warning chaoslib logs is in chaostoolkit.log beside the markers; stderr stays clean."""
    journal = chaos_experiment.run(EXPERIMENT, tmp_path / "markers.jsonl", {})
    captured = capfd.readouterr()
    assert journal["status"] == "completed"
    assert "Rollbacks were explicitly requested" not in captured.err + captured.out
    log = (tmp_path / chaos_experiment.LOG_FILE).read_text()
    assert "Rollbacks were explicitly requested" in log
    assert logging.getLogger("chaostoolkit").handlers == []  # nothing left behind for the next scenario

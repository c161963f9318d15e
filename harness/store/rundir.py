"""The run directory `reports/<run-id>/`: everything a run measured, written as it goes.

    plan.json                    the resolved plan (absolute paths, defaults filled in)
    result.json                  harness.result/v1, rewritten after every scenario
    summary.md, junit.xml        rendered from result.json
    scenarios/NAME-TRIAL/
        timeline.jsonl           the load timeline (recorder)
        markers.jsonl            phases and Chaos Toolkit activities
        journal.json             the Chaos Toolkit journal, redacted
        controlplane.jsonl       control-plane probes (Kubernetes targets), redacted
        acks.jsonl, verify.json  acknowledged writes and their read-back
        events.jsonl             the testbed's ground truth during the scenario
        locust.log, locust.json

A run directory alone is enough to re-score and re-render: nothing here points at a live
target. Files are replaced atomically, so a crash leaves the previous complete version.

Secrets are masked (harness.redaction) when the files reports show are written — the plan
(`write_plan`), journals (`write_journal`), result.json's target and environment
(`redacted_facts`, when the engine assembles it), control-plane records
(harness.kubernetes.probes) — so a run folder can be shared as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from harness import redaction
from harness.errors import FileInputError, InputError

RESULT = "result.json"
PLAN = "plan.json"
JOURNAL = "journal.json"
FACTS = ("target", "environment")
"""result.json's facts about where and with what the run ran, shown as they are in reports."""


def new_run_id(plan_name: str, now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{plan_name}-{secrets.token_hex(2)}"


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, path)


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileInputError(path, "missing (is this a run directory?)") from None
    except json.JSONDecodeError as exc:
        raise FileInputError(path, f"not valid JSON: {exc.msg}", line=exc.lineno) from exc


def write_plan(run_dir: Path, plan: Any) -> None:
    """plan.json, the resolved plan, with secrets masked (vars named like one, a password in a URL):
    `harness score` reads it back and the report shows it."""
    write_json(run_dir / PLAN, redaction.scrub(plan))


def write_journal(sdir: Path, journal: dict[str, Any]) -> None:
    """A scenario trial's Chaos Toolkit journal, without its secrets (harness.redaction.journal)."""
    write_json(sdir / JOURNAL, redaction.journal(journal))


def redacted_facts(result: Mapping[str, Any]) -> dict[str, Any]:
    """result.json's content with the run's `target` and `environment` facts masked, the rest as it
    is: a target's facts may hold a token or a URL with a password, and reports show them."""
    return {**result, **{k: redaction.scrub(result[k]) for k in FACTS if k in result}}


def scenario_dir(run_dir: Path, name: str, trial: int) -> Path:
    return run_dir / "scenarios" / f"{name}-{trial}"


def read_markers(path: Path) -> list[dict[str, Any]]:
    markers = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return markers
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            marker = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break  # a last line cut short by a crash
            raise FileInputError(path, f"not a JSON object: {exc.msg}", line=number) from exc
        if not isinstance(marker, dict):
            raise FileInputError(path, "not a JSON object", line=number)
        t = marker.get("t")
        if t is not None and not (
            isinstance(t, int | float) and not isinstance(t, bool) and math.isfinite(t)
        ):
            # NaN compares false with everything: windows built on it would be empty, and pass.
            raise FileInputError(path, f"marker time t={t!r} is not a finite number of seconds", line=number)
        markers.append(marker)
    return markers


def read_records(path: Path) -> list[dict[str, Any]] | None:
    """The JSON objects of a JSON-lines file another process wrote (controlplane.jsonl), or None
    when there is none; lines that do not parse (a torn last line of a crash) are left out."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    out = []
    for line in data.splitlines():
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(record, dict):
            out.append(record)
    return out


def check_run_dir(path: Path) -> Path:
    if not path.is_dir():
        raise InputError(f"RUN_DIR: {path} is not a directory")
    if not (path / PLAN).exists():
        raise InputError(f"RUN_DIR: {path} has no {PLAN}; is it a run directory?")
    return path

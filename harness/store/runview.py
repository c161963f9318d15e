"""A run folder read into the values report.html is rendered from (harness.report.inputs).

The report reads no file: `read` gathers result.json, plan.json and, per scenario trial of the
result, its markers, timeline, journal and control-plane records, each as a value or, when the
file is absent or unreadable, as `inputs.Missing`, so a crashed run still renders and says what is
missing. `write_report` is the one call for callers (the engine after a run and at every
checkpoint, `harness report`, the render benchmark): read, render, write report.html atomically.

Secrets are masked when run files are written (harness.store.rundir, the engine, the control-plane
sampler). They are masked again here, where files are read, because run folders written by older
versions of the harness may still hold them: their plan.json was not scrubbed at every depth, their
result.json kept the target's facts as the target gave them. Control-plane records are the
exception: the page shows only their times, latencies, names and outcomes, never a free-form value,
and a day of records would cost seconds to scrub.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness import redaction, scoring, timeline
from harness.errors import HarnessError
from harness.report import html, inputs
from harness.result import files as result_files
from harness.result import model as result_model
from harness.store import rundir

MARKERS = "markers.jsonl"
TIMELINE = "timeline.jsonl"
CONTROL_PLANE = "controlplane.jsonl"


def read(
    run_dir: Path, result: Mapping[str, Any] | None = None, files: timeline.SeriesFiles | None = None
) -> inputs.RunInputs:
    """The report's values of a run folder (result defaults to its result.json, which must exist;
    files: the timelines already read, by the engine or by `harness score`)."""
    run_dir = Path(run_dir)
    files = files or timeline.SeriesFiles()
    if result is None:  # checked against the result model: a malformed file names its field
        result = result_files.read(run_dir / rundir.RESULT).to_json()
    plan = _read_optional_json(run_dir / rundir.PLAN)
    trials = {}
    for entry in result.get("scenarios") or []:
        name, trial = str(entry.get("name")), int(entry.get("trial") or 1)
        trials[(name, trial)] = read_trial(rundir.scenario_dir(run_dir, name, trial), name, trial, files)
    return inputs.RunInputs(
        result=rundir.redacted_facts(result),
        plan=redaction.scrub(plan) if isinstance(plan, dict) else None,
        trials=trials,
    )


def write_report(
    run_dir: Path,
    result: Mapping[str, Any] | None = None,
    trends: Mapping[str, list[dict]] | None = None,
    files: timeline.SeriesFiles | None = None,
) -> Path:
    """Write run_dir/report.html atomically; return its path."""
    path = Path(run_dir) / html.REPORT
    rundir.write_text(path, html.render_report(read(run_dir, result, files), trends))
    return path


def failed_journals(run_dir: Path, result: result_model.Result) -> dict[tuple[str, int], inputs.Journal]:
    """The journals of the trials that did not pass, by (scenario, trial): what summary.md's and
    the console's "why it failed" read for the steady-state probes. An unreadable one is left out."""
    out = {}
    for s in result.scenarios:
        if s.passed or not s.applicable:
            continue
        journal = _journal(rundir.scenario_dir(Path(run_dir), s.name, s.trial) / rundir.JOURNAL)
        if isinstance(journal, inputs.Journal):
            out[(s.name, s.trial)] = journal
    return out


def read_trial(sdir: Path, name: str, trial: int, files: timeline.SeriesFiles | None = None) -> inputs.Trial:
    """One scenario trial's files as values."""
    return inputs.Trial(
        name=name,
        trial=trial,
        markers=_markers(sdir / MARKERS),
        series=_series(sdir / TIMELINE, files or timeline.SeriesFiles()),
        journal=_journal(sdir / rundir.JOURNAL),
        controlplane=rundir.read_records(sdir / CONTROL_PLANE) or [],
    )


def scoring_inputs(
    sdir: Path, files: timeline.SeriesFiles | None = None
) -> tuple[timeline.Series, scoring.Phases] | str:
    """A trial's Series and phases, as scoring needs them, or why they cannot be read.

    One reading for `harness score` (the engine) and the comparison's common scale, so that both
    refuse the same damaged folders with the same words."""
    path = sdir / TIMELINE
    try:
        phases = scoring.phases_from_markers(rundir.read_markers(sdir / MARKERS))
        if not path.is_file():
            return f"no {TIMELINE}"
        series = (files or timeline.SeriesFiles()).series(path)
    except (ValueError, HarnessError) as exc:
        return str(exc)
    if not len(series):  # nothing to measure: an error to see, not a gate failed on nulls
        return f"{path}: no buckets: the load never completed a request"
    return series, phases


def _markers(path: Path) -> list[dict[str, Any]] | inputs.Missing:
    if not path.exists():
        return inputs.Missing(path.name)
    try:
        return rundir.read_markers(path)
    except HarnessError as exc:
        return inputs.Missing(path.name, str(exc))


def _series(path: Path, files: timeline.SeriesFiles) -> timeline.Series | inputs.Missing:
    if not path.exists():
        return inputs.Missing(path.name)
    try:
        return files.series(path)  # read once per run: when scoring has read it, this costs nothing
    except (HarnessError, ValueError) as exc:
        return inputs.Missing(path.name, str(exc))


def _journal(path: Path) -> inputs.Journal | inputs.Missing:
    raw = _read_optional_json(path)
    if not isinstance(raw, dict):
        return inputs.Missing(path.name, None if not path.exists() else "not a Chaos Toolkit journal in JSON")
    return journal_values(redaction.journal(raw))


def journal_values(journal: Mapping[str, Any]) -> inputs.Journal:
    """What the report shows of a Chaos Toolkit journal (chaoslib's format), as values."""
    exp = journal.get("experiment") or {}
    states = journal.get("steady_states") or {}

    def steady(which: str) -> inputs.SteadyState | None:
        state = states.get(which)
        if not state:
            return None
        probes = [_activity(p, which) for p in state.get("probes") or []]
        return inputs.SteadyState(met=state.get("steady_state_met"), probes=probes)

    return inputs.Journal(
        title=exp.get("title"),
        description=exp.get("description"),
        tags=exp.get("tags") or [],
        status=journal.get("status"),
        deviated=journal.get("deviated"),
        duration_s=journal.get("duration"),
        configuration=exp.get("configuration") or {},
        hypothesis=(exp.get("steady-state-hypothesis") or {}).get("title"),
        activities=[_activity(a, "method") for a in journal.get("run") or []]
        + [_activity(a, "rollbacks") for a in journal.get("rollbacks") or []],
        before=steady("before"),
        after=steady("after"),
    )


def _activity(run: Mapping[str, Any], section: str) -> inputs.Activity:
    activity = run.get("activity") or {}
    exception = run.get("exception")
    if isinstance(exception, list) and exception:
        exception = str(exception[-1]).strip()  # chaoslib keeps the traceback's lines
    return inputs.Activity(
        section=section,
        name=activity.get("name"),
        type=activity.get("type"),
        provider=activity.get("provider") or {},
        pauses=activity.get("pauses"),
        status=run.get("status"),
        start=run.get("start"),
        duration_s=run.get("duration"),
        tolerance=activity.get("tolerance"),
        has_tolerance="tolerance" in activity,
        tolerance_met=run.get("tolerance_met"),
        output=run.get("output"),
        has_output="output" in run,
        exception=exception,
    )


def _read_optional_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None

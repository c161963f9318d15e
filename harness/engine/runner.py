"""Run a plan: for each scenario and trial, load + baseline + experiment + observation, scored.

Per scenario and trial:
1. start Locust in its own process with the timeline recorder;
2. warm-up, then the baseline window;
3. the Chaos Toolkit experiment, in the main thread, rollbacks "always", every activity
   marked on the timeline; abort conditions watched on the live timeline meanwhile;
4. the observation window: load stays on until the scenario has recovered and stayed healthy
   for the stability window, or until `observe_s` (and, when the plan sets `horizon_s`, until
   that horizon has passed);
5. stop the load, verify acknowledged writes, copy the ground truth, score, gate.

Everything is written as it happens (run directory, see harness.store.rundir), so an
interrupted run keeps what it measured. `score_scenario_dir` is the one function that
turns a scenario folder into its result entry, used here and by `harness score`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from harness import findings, scoring
from harness.chaos import experiment as chaos_experiment
from harness.chaos.control import write_marker
from harness.engine import abort, stopping
from harness.engine.progress import Progress
from harness.engine.stopping import Interrupted, open_signal_handlers
from harness.engine.targets import Target, environment, make_target
from harness.errors import HarnessError
from harness.load import process, verify
from harness.phases import Marker
from harness.plan import applicability
from harness.plan import gates as gate_lang
from harness.result import files as result_files
from harness.result import model as result_model
from harness.scoring import controlplane, stages
from harness.store import history, rundir, runview
from harness.timeline import SeriesFiles

SCHEMA = result_model.SCHEMA
EXPERIMENT_BUDGET_S = 900.0
"""The longest an experiment may run; Locust's own run time is bounded by it (the engine stops it sooner)."""
RECORDER_CATCH_UP_S = 5.0
"""How long the baseline check waits for the recorder to write the window's last buckets (it
normally has: it writes a bucket about a second after it ends). Longer behind, the load generator
is itself short of CPU, and the check's `load_running` says what was missing."""
LOAD_START_TIMEOUT_S = 60.0
"""How long the warm-up waits for the load's first timeline bucket before the scenario is an error."""
SCENARIO_FILE = "scenario.json"
CONTROL_PLANE_FILE = "controlplane.jsonl"
"""Control-plane probes a target sampled during the scenario (Kubernetes; none on the testbed)."""
EVENTS_FILE = "events.jsonl"
"""The testbed's ground truth during the scenario."""


# --- scoring a scenario folder (also `harness score`) -------------------------------------
def score_scenario_dir(
    plan: Any,
    scenario: Any,
    sdir: Path,
    head: dict[str, Any] | None = None,
    store: history.HistoryStore | None = None,
    files: SeriesFiles | None = None,
) -> result_model.Scenario:
    """The result entry of one scenario trial, from its folder alone (and the history store, for
    gates that compare with earlier runs: without a store those gates are skipped, with a reason).
    files: the timelines already read (by the engine while the scenario ran, or for the report)."""
    facts = rundir.read_json(sdir / SCENARIO_FILE)
    entry = dict(facts)
    if entry.get("status") == result_model.NOT_APPLICABLE:
        # Not run: nothing to score or gate, and nothing that could fail the run.
        entry.update({"metrics": None, "gates": [], "passed": True})
        return _scenario_entry(sdir, entry)
    files = files or SeriesFiles()
    entry.update({"metrics": None, "gates": [], "passed": False})
    check = _baseline_check(
        plan, sdir, files, went_on=entry.get("status") != result_model.BASELINE_NOT_STEADY
    )
    if check is not None:
        entry["baseline_check"] = check
    if entry.get("status") == result_model.BASELINE_NOT_STEADY:
        # No fault: nothing to score or gate, and not passed; the findings say why.
        return _scenario_entry(sdir, _with_findings(entry, plan, head))
    read = runview.scoring_inputs(sdir, files)
    if isinstance(read, str):
        entry["scoring_error"] = read
        return _scenario_entry(sdir, _with_findings(entry, plan, head))
    series, phases = read
    verified = _read_optional(sdir / "verify.json")
    data_loss = verify.data_loss(verified)
    settings = scoring.settings_for(plan)
    metrics = scoring.score_scenario(
        series,
        phases,
        settings,
        data_loss=data_loss,
        data_loss_unverified=verify.unverified(verified),
    ).to_dict()
    control_plane = rundir.read_records(sdir / CONTROL_PLANE_FILE)
    if control_plane is not None or plan.target.kind == "kubernetes":
        # On a cluster the key is always there (nulls if the sampler wrote nothing), so a gate
        # on it fails with a reason rather than as an unknown metric.
        metrics["control_plane"] = controlplane.summarize(control_plane or [], phases)
    explained = _explained(sdir, phases, metrics, settings, control_plane, plan.target.kind == "testbed")
    metrics["faults_without_effect"] = explained["fault_effect"].without_effect
    entry["phases"] = dataclasses.asdict(phases)
    entry["metrics"] = metrics
    entry["recovery_phases"] = explained["recovery_phases"]
    entry["fault_effect"] = explained["fault_effect"].to_dict()
    head = head or {}
    target = history.target_key(head.get("target") or {})
    results = []
    for text in plan.gates_for(scenario):
        gate = gate_lang.parse(text)
        functions = history.history_functions(
            store, plan.name, target, scenario.name, gate.subject, before=head.get("started")
        )
        results.append(gate_lang.evaluate(gate, metrics, functions))
    entry["gates"] = [r.to_json() for r in results]
    # A scenario whose steady state did not hold before the fault measured nothing about the
    # fault: it cannot pass, whatever its gates say.
    scenario_entry = _scenario_entry(sdir, _with_findings(entry, plan, head))
    passed = scenario_entry.ran_to_completion and all(r.passed for r in results)
    return scenario_entry.model_copy(update={"passed": passed})


def _explained(
    sdir: Path,
    phases: scoring.Phases,
    metrics: dict[str, Any],
    settings: scoring.ScoringSettings,
    control_plane: list[dict[str, Any]] | None,
    testbed: bool,
) -> dict[str, Any]:
    """The recovery phases and the fault-effect check, from the ground truth, samples and scores.

    Only the testbed's events.jsonl is ground truth; a cluster's holds its Kubernetes Events,
    whose reasons are not the testbed's event names, so they are not read as if they were."""
    markers = rundir.read_records(sdir / "markers.jsonl") or []
    events = rundir.read_records(sdir / EVENTS_FILE) if testbed else None
    users = stages.UserView(
        metrics.get("time_to_impact_s"), metrics.get("recovery_time_s"), settings.stability_s
    )
    activities = stages.fault_activities(markers)
    found = stages.recovery_phases(
        phases, users, events, control_plane, activities[0][0] if activities else None
    )
    return {
        "recovery_phases": stages.to_dicts(found, phases.fault_start_t),
        "fault_effect": stages.fault_effect(phases, markers, users, events, control_plane),
    }


def _with_findings(entry: dict[str, Any], plan: Any, head: dict[str, Any] | None) -> dict[str, Any]:
    """The entry with what the rules of harness.findings read in it (docs/findings.md)."""
    found = findings.for_scenario(entry, plan.model_dump(mode="json"), (head or {}).get("target"))
    return {**entry, "findings": [f.model_dump(mode="python", exclude_unset=True) for f in found]}


def _baseline_check(plan: Any, sdir: Path, files: SeriesFiles, went_on: bool) -> dict[str, Any] | None:
    """The baseline check judged again from the folder (the window the engine marked, or in older
    runs the baseline up to the fault); None when the baseline or the timeline cannot be read.
    went_on: the fault was injected (the scenario did not stop at the check)."""
    try:
        window = scoring.baseline.window_from_markers(rundir.read_markers(sdir / "markers.jsonl"))
        path = sdir / "timeline.jsonl"
        series = files.series(path) if window is not None and path.is_file() else None
    except (HarnessError, ValueError):
        return None  # scoring reports the broken file
    if series is None or window is None or not len(series):
        return None
    settings = scoring.settings_for(plan)
    verdict = scoring.baseline.judge(series, *window, settings.policy, settings.baseline)
    return verdict.to_dict(went_on=went_on and not verdict.steady)


def _scenario_entry(sdir: Path, entry: dict[str, Any]) -> result_model.Scenario:
    """The entry as the model; scenario.json that does not fit it is refused naming the field."""
    return result_files.parse_scenario(entry, sdir / SCENARIO_FILE)


def _read_optional(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def assemble_result(
    run_dir: Path,
    plan: Any,
    head: dict[str, Any],
    store: history.HistoryStore | None = None,
    files: SeriesFiles | None = None,
) -> result_model.Result:
    """result.json from the run folder: the run's facts plus every scenario scored again (from
    the Series in `files` where a timeline was read before)."""
    files = files or SeriesFiles()
    scenarios = []
    for scenario in plan.scenarios:
        for trial in range(1, scenario.trials + 1):
            sdir = rundir.scenario_dir(run_dir, scenario.name, trial)
            if (sdir / SCENARIO_FILE).exists():
                scenarios.append(score_scenario_dir(plan, scenario, sdir, head, store, files))
    complete = head.get("status") == "completed"
    entries = [s.model_dump(mode="python", exclude_unset=True) for s in scenarios]
    overall = findings.for_run(entries, plan.model_dump(mode="json"), head.get("target"))
    content = {
        **rundir.redacted_facts(head),  # the target's facts may hold a token or a URL password
        "schema": SCHEMA,
        "passed": complete and bool(scenarios) and all(s.passed for s in scenarios),
        "scenarios": scenarios,
        "findings": [f.model_dump(mode="python", exclude_unset=True) for f in overall],
    }
    return result_files.parse(content, run_dir / rundir.RESULT)


def write_outputs(
    run_dir: Path,
    result: result_model.Result,
    store: history.HistoryStore | None = None,
    files: SeriesFiles | None = None,
) -> None:
    """result.json first (what was measured), then what is rendered from it; a report that fails
    to render is a warning, never the loss of the result. files: timelines already read."""
    from harness.report import junit, markdown

    rundir.write_text(run_dir / rundir.RESULT, result_files.dumps(result))
    journals = runview.failed_journals(run_dir, result)
    rundir.write_text(run_dir / "summary.md", markdown.summary(result, journals=journals))
    rundir.write_text(run_dir / "junit.xml", junit.render(result))
    # The HTML report's templates walk result.json's content by key.
    content = result.to_json()
    try:
        trends = store.trends(result) if store is not None and result.scenarios else None
    except HarnessError as exc:
        _warn(f"warning: no trends in the report: {exc}")
        trends = None
    try:
        runview.write_report(run_dir, content, trends=trends, files=files)
    except Exception as exc:  # the report is a view; result.json above is the record
        _warn(f"warning: report.html was not written: {exc.__class__.__name__}: {exc}")


# --- running ------------------------------------------------------------------------------
class Engine:
    def __init__(self, plan: Any, reports_dir: Path, testbed_dir: Path, progress: Progress,
                 keep_testbed: bool = False, store: history.HistoryStore | None = None,
                 wait_s: float = 0.0, side: str | None = None, batch: str | None = None) -> None:  # fmt: skip
        self.plan = plan
        self.side = side
        """The side's name when one command runs several targets (harness.engine.interleave); None
        for a run of its own. It prefixes what the progress lines say."""
        self.store = store
        self.reports_dir = reports_dir
        self.progress = progress
        url = "" if plan.load.host == "auto" else plan.load.host
        self.run_id = rundir.new_run_id(plan.name)
        # One run per target: the target holds its lock while open, waiting up to wait_s for another run.
        self.target: Target = make_target(
            plan.target,
            testbed_dir,
            keep_testbed,
            url=url,
            run_id=self.run_id,
            wait_s=wait_s,
            say=progress.say,
        )
        self.run_dir = reports_dir / self.run_id
        self.files = SeriesFiles(saved=True)
        """Every scenario's timeline as the engine read it while the scenario ran: scored from here
        (and a long one's Series saved beside it, for `harness report`)."""
        self.head: dict[str, Any] = {
            "schema": SCHEMA,
            "run_id": self.run_id,
            "plan": {"name": plan.name, "description": getattr(plan, "description", None)},
            "target": {"kind": plan.target.kind},
            "environment": environment(),
            "started": time.time(),
            "ended": None,
            "status": "running",
        }
        if batch is not None:  # written only when set: a run of its own keeps its bytes
            self.head["batch"] = batch
        self.stopped_by: HarnessError | None = None
        """Why the run stopped early (an interrupt or a HarnessError); None: it ran to its end."""

    def checkpoint(self) -> result_model.Result:
        result = assemble_result(self.run_dir, self.plan, self.head, self.store, self.files)
        write_outputs(self.run_dir, result, self.store, self.files)
        return result

    def run(self) -> result_model.Result:
        self.start()
        try:
            with open_signal_handlers():
                self.open_target()
                for scenario in self.plan.scenarios:
                    for trial in range(1, scenario.trials + 1):
                        self.run_trial(scenario, trial)
            self.head["status"] = "completed"
        except (Interrupted, KeyboardInterrupt) as exc:
            self.head["status"] = "interrupted"
            self.stopped_by = exc if isinstance(exc, HarnessError) else Interrupted("stopped by Ctrl-C")
        except HarnessError as exc:
            self.fail(exc)
        finally:
            result = self.finish()
        if self.stopped_by is not None:
            raise self.stopped_by
        return result

    # The steps of `run`, also taken one by one by harness.engine.interleave, which runs several
    # engines' trials in turn.
    def start(self) -> None:
        """The run folder with its plan and a first result.json (status running)."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        rundir.write_plan(self.run_dir, self.plan.model_dump(mode="json"))
        self.checkpoint()

    def open_target(self) -> None:
        """Prepare the target (holding its lock) and record its facts."""
        side = f" ({self.side})" if self.side else ""
        self.progress.say(f"run {self.run_id}{side}: preparing the {self.plan.target.kind} target")
        self.target.open()
        self.head["target"] = self.target.facts()
        self.checkpoint()

    def run_trial(self, scenario: Any, trial: int) -> str:
        """One trial, scored into result.json at once; Interrupted when it was stopped. A scenario
        the target cannot run (its `requires` unmet by the target's facts) is recorded once, as
        trial 1, not applicable, and none of its trials runs."""
        reason = applicability.not_applicable(scenario.requires, self.head["target"])
        if reason is not None:
            if trial == 1:
                self.record_not_applicable(scenario, reason)
                self.checkpoint()
            return result_model.NOT_APPLICABLE
        status = self.run_scenario(scenario, trial)
        self.checkpoint()
        stopping.check()  # a SIGTERM swallowed on the way (a clean-up's broad except) still stops the run
        if status == "interrupted":
            raise Interrupted("stopped during a scenario")
        return status

    def record_not_applicable(self, scenario: Any, reason: str) -> None:
        """The scenario's folder with its scenario.json saying why it was not run; no load, no fault."""
        side = f"{self.side} " if self.side else ""
        self.progress.say(f"{side}{scenario.name}: not applicable ({reason}); not run")
        sdir = rundir.scenario_dir(self.run_dir, scenario.name, 1)
        sdir.mkdir(parents=True, exist_ok=True)
        now = time.time()
        rundir.write_json(
            sdir / SCENARIO_FILE,
            {
                "name": scenario.name,
                "experiment": str(scenario.experiment),
                "trial": 1,
                "status": result_model.NOT_APPLICABLE,
                "not_applicable": reason,
                "started": now,
                "ended": now,
            },
        )

    def fail(self, exc: HarnessError) -> None:
        """Mark the run failed with the error that stopped it."""
        self.head["status"] = "failed"
        self.head["error"] = str(exc)
        self.stopped_by = exc

    def finish(self) -> result_model.Result:
        """Release the target, write the final result and record it; the status is set before."""
        self.progress.end()
        self.head["ended"] = time.time()
        try:
            self.target.close()
        finally:
            result = self.checkpoint()
            record(self.store, result, self.run_dir, _warn)
        return result

    def run_scenario(self, scenario: Any, trial: int) -> str:
        plan = self.plan
        label = f"{self.side + ' ' if self.side else ''}{scenario.name}#{trial}"
        sdir = rundir.scenario_dir(self.run_dir, scenario.name, trial)
        sdir.mkdir(parents=True, exist_ok=True)
        markers = sdir / "markers.jsonl"
        facts: dict[str, Any] = {
            "name": scenario.name,
            "experiment": str(scenario.experiment),
            "trial": trial,
            "status": "running",
            "aborted_by": None,
            "deviated": None,
            "steady_state": {"before": None, "after": None},
            "started": time.time(),
            "ended": None,
            "healed": [],
            "error": None,
            "paths": {name: f"scenarios/{sdir.name}/{name}" for name in
                      ("timeline.jsonl", "markers.jsonl", "journal.json", "events.jsonl",
                       CONTROL_PLANE_FILE)},
        }  # fmt: skip
        rundir.write_json(sdir / SCENARIO_FILE, facts)
        experiment = chaos_experiment.load(scenario.experiment)
        variables = {**self.target.configuration(), **{k: v for k, v in scenario.vars.items()}}
        w = plan.windows
        spec = process.LoadSpec(
            locustfile=Path(plan.load.locustfile),
            host=self.target.url if plan.load.host == "auto" else plan.load.host,
            users=plan.load.users,
            spawn_rate=plan.load.spawn_rate,
            run_time_s=w.warmup_s + w.baseline_s + EXPERIMENT_BUDGET_S + max(w.observe_s, w.horizon),
            processes=plan.load.processes,
            bucket_s=plan.load.bucket_s,
            pacing_s=plan.load.pacing_s,
            shape=plan.load.shape,
            shape_duration_s=w.warmup_s + w.baseline_s + w.observe_s,
            extra_args=(
                "--request-timeout", str(plan.load.request_timeout_s),
                "--connect-timeout", str(plan.load.connect_timeout_s),
            ),
            **_distributed(plan.load),
        )  # fmt: skip
        live = abort.LiveSeries(sdir / "timeline.jsonl")
        self.progress.begin(label)
        status = "running"
        try:
            with (
                self.target.observe(sdir, _service_name(experiment, variables)),
                process.open_load(spec, sdir) as (locust, load),
            ):
                facts["load"] = _load_facts(spec, load)
                rundir.write_json(sdir / SCENARIO_FILE, facts)
                self._phase(markers, Marker.WARMUP, w.warmup_s, locust, live)
                self._until_load_flows(w.warmup_s, locust, live)
                self._phase(markers, Marker.BASELINE, w.baseline_s, locust, live)
                if not self._baseline_steady(markers, live, facts, label):
                    status = result_model.BASELINE_NOT_STEADY
                    write_marker(str(markers), kind="phase", phase=Marker.STOPPED)
                    return status
                write_marker(str(markers), kind="phase", phase=Marker.EXPERIMENT)
                self.progress.enter(Marker.EXPERIMENT)
                with abort.AbortWatcher(live, plan.abort, lambda _r: chaos_experiment.interrupt_for_abort(),
                                        time.time) as watcher:  # fmt: skip
                    journal = chaos_experiment.run(experiment, markers, variables)
                rundir.write_journal(sdir, journal)
                facts["deviated"] = bool(journal.get("deviated"))
                facts["steady_state"] = _steady_states(journal)
                if watcher.reason:
                    status = "aborted"
                    facts["aborted_by"] = watcher.reason
                    self.progress.say(f"{label}: aborted ({watcher.reason}); rollbacks ran")
                elif journal.get("status") == "interrupted":
                    status = "interrupted"
                else:
                    status = journal.get("status", "completed")
                    self._observe(markers, w, locust, live)
                write_marker(str(markers), kind="phase", phase=Marker.STOPPED)
        except (Interrupted, KeyboardInterrupt):
            status = "interrupted"
            write_marker(str(markers), kind="phase", phase=Marker.STOPPED)
        except HarnessError as exc:
            status = "error"
            facts["error"] = str(exc)
            if isinstance(exc, process.WorkersMissingError):
                facts["load"] = {
                    "processes": None,
                    "workers_expected": exc.expected,
                    "workers_joined": exc.joined,
                }
            write_marker(str(markers), kind="phase", phase=Marker.STOPPED)
        finally:
            facts["healed"] = self.target.heal()
            facts["status"] = status
            facts["ended"] = time.time()
            with live.lock:  # the load has stopped: its last lines, then scoring takes this Series
                live.update(final=True)
            self.files.add(live.file)
            self._after_load(sdir, facts)
            rundir.write_json(sdir / SCENARIO_FILE, facts)
        return status

    def _baseline_steady(
        self, markers: Path, live: abort.LiveSeries, facts: dict[str, Any], label: str
    ) -> bool:
        """Judge the baseline's closed buckets (scoring.baseline) before any fault; False: do not inject.

        The window ends where the recorder has surely written its buckets (it writes one about a
        second after it ends), marked in markers.jsonl so that `harness score` judges the same."""
        settings = scoring.settings_for(self.plan)
        end_t = time.time() - 2.0 * self.plan.load.bucket_s - 1.0
        write_marker(str(markers), kind=scoring.baseline.CHECK_MARKER, t=round(end_t, 6))
        window = scoring.baseline.window_from_markers(rundir.read_markers(markers))
        deadline = time.monotonic() + RECORDER_CATCH_UP_S
        while True:
            with live.lock:
                live.update()
                series = live.series
                written = series is not None and len(series) and series.t[-1] + series.dt[-1] >= end_t
                if written or time.monotonic() >= deadline:
                    if series is None or window is None:
                        return True  # nothing written: the timeline is broken, which scoring reports
                    verdict = scoring.baseline.judge(series, *window, settings.policy, settings.baseline)
                    break
            time.sleep(0.2)
            stopping.check()
        went_on = not verdict.steady and not settings.baseline.require_steady
        facts["baseline_check"] = verdict.to_dict(went_on=went_on)
        rundir.write_json(markers.parent / SCENARIO_FILE, facts)
        if not verdict.steady:
            reasons = "; ".join(f"{c.name}: {c.evidence}" for c in verdict.failed)
            then = "injecting anyway, as the plan asks" if went_on else "no fault injected"
            self.progress.say(f"{label}: BASELINE NOT STEADY ({reasons}); {then}")
        return verdict.steady or went_on

    def _phase(
        self, markers: Path, phase: Marker, seconds: float, locust: Any, live: abort.LiveSeries
    ) -> None:
        write_marker(str(markers), kind="phase", phase=phase)
        self.progress.enter(phase)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if locust.poll() is not None:
                raise HarnessError(
                    f"Locust exited early (code {locust.returncode}); see {markers.parent / 'locust.log'}"
                )
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))
            stopping.check()
            self._tick(live)

    def _until_load_flows(self, warmup_s: float, locust: Any, live: abort.LiveSeries) -> None:
        """Extend the warm-up until load has flowed for half of it: the warm-up counts from Locust's
        start, and on a starved machine Locust has been seen to send its first request 15 s late,
        which left the baseline empty and the fault injected before any load. Normally the first
        bucket is seen before the warm-up ends and this waits for nothing."""
        deadline = time.monotonic() + LOAD_START_TIMEOUT_S
        while True:
            with live.lock:
                first_t = float(live.series.t[0]) if live.series is not None and len(live.series) else None
            if first_t is not None and time.time() >= first_t + warmup_s / 2:
                return
            if locust.poll() is not None:
                raise HarnessError(f"Locust exited early (code {locust.returncode}); see its locust.log")
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"no load within {LOAD_START_TIMEOUT_S:g} s of starting Locust (no timeline bucket); "
                    "see the scenario's locust.log"
                )
            time.sleep(0.25)
            stopping.check()
            self._tick(live)

    def _tick(self, live: abort.LiveSeries) -> None:
        """Read the lines the recorder appended, and show the last seconds of load."""
        with live.lock:
            live.update()
            self.progress.tick(live.series)

    def _observe(self, markers: Path, w: Any, locust: Any, live: abort.LiveSeries) -> None:
        """Keep the load on until the scenario has recovered and stayed stable (as scoring defines
        it), or until observe_s has passed; with a `windows.horizon_s` in the plan, also until the
        horizon has passed.

        Availability, error rate and downtime are counted over the horizon either way: without
        `horizon_s` the rest of it after a seen recovery counts as healthy (scoring's `_horizon`),
        so a quick recovery does not keep every scenario's load on for `observe_s`. Checked every
        second on the live series (`scoring.RecoveryWatch`: bucket health only, so a check costs
        about the same however long the scenario has run)."""
        write_marker(str(markers), kind="phase", phase=Marker.OBSERVE)
        self.progress.enter(Marker.OBSERVE)
        settings = scoring.settings_for(self.plan)
        try:
            phases = scoring.phases_from_markers(rundir.read_markers(markers))
        except ValueError:
            return  # the experiment never reached its method: there is no fault to recover from
        watch = scoring.RecoveryWatch(phases, settings)
        horizon_end_t = phases.fault_start_t + settings.horizon_s
        end = time.monotonic() + w.observe_s
        while True:
            if locust.poll() is not None:
                raise HarnessError("Locust exited during the observation window")
            time.sleep(1.0)
            stopping.check()
            now = time.time()
            closed_until = (
                now - 2.0 * self.plan.load.bucket_s - 1.0
            )  # the recorder writes a bucket ~1 s after it ends
            horizon_seen = w.horizon_s is None or closed_until >= horizon_end_t
            if horizon_seen and time.monotonic() >= end:
                return  # waited observe_s without seeing recovery: not recovered
            with live.lock:
                live.update()
                self.progress.tick(live.series)
                if not horizon_seen or now - phases.fault_end_t < w.stability_s or live.series is None:
                    continue
                recovered_t = watch.recovered(live.series, closed_until)
            if recovered_t is not None:
                write_marker(str(markers), kind="phase", phase=Marker.OBSERVED, t=round(closed_until, 6))
                return

    def _after_load(self, sdir: Path, facts: dict[str, Any]) -> None:
        """Verify acknowledged writes and keep the ground truth; never lose what was measured."""
        if facts.get("load"):
            facts["load"]["workers_took_part"] = _workers_took_part(sdir / "timeline.jsonl")
        acks = verify.read_acks(sdir / "acks.jsonl")
        try:
            result = verify.verify_acks(self.target.url, acks, timeout_s=30)
        except HarnessError as exc:
            result = {"acknowledged": len(acks), "missing": None, "data_loss": None, "error": str(exc)}
        rundir.write_json(sdir / "verify.json", result)
        events = self.target.ground_truth(facts["started"] - 1, time.time())
        rundir.write_text(sdir / "events.jsonl", "".join(json.dumps(e) + "\n" for e in events))


def _service_name(experiment: dict[str, Any], variables: dict[str, Any]) -> str | None:
    """The scenario's Service: its `service_name` var, else the experiment's default; None if neither is a name."""
    for value in (variables.get("service_name"), (experiment.get("configuration") or {}).get("service_name")):
        if isinstance(value, str) and value and "$" not in value:
            return value
    return None


def _distributed(load: Any) -> dict[str, Any]:
    """LoadSpec arguments for load from Locust workers on other machines; none for local load."""
    if load.workers is None:
        return {}
    w = load.workers
    return {
        "workers": w.expect,
        "master_bind": (w.bind_host, w.bind_port),
        "join_timeout_s": w.join_timeout_s,
    }


def _load_facts(spec: process.LoadSpec, load: process.LoadResult) -> dict[str, Any]:
    """Where the load came from: this host's processes, or workers that joined the master."""
    if spec.workers:
        return {"processes": None, "workers_expected": spec.workers, "workers_joined": load.workers_joined}
    return {"processes": spec.processes, "workers_expected": 0, "workers_joined": 0}


def _workers_took_part(timeline: Path) -> int | None:
    """Locust workers whose measurements reached the master (its timeline's end line); None:
    Locust did not close the timeline, or ran as one process."""
    try:
        with timeline.open("rb") as fh:
            fh.seek(max(0, fh.seek(0, 2) - 4096))  # the end line is the last; the file may be large
            last = fh.read().rstrip(b"\n").rpartition(b"\n")[2]
        end = json.loads(last)
    except (OSError, ValueError):
        return None
    return end.get("workers") if isinstance(end, dict) and end.get("type") == "end" else None


def _steady_states(journal: dict[str, Any]) -> dict[str, bool | None]:
    states = journal.get("steady_states") or {}

    def met(which: str) -> bool | None:
        value = states.get(which)
        return None if not value else value.get("steady_state_met")

    return {"before": met("before"), "after": met("after")}


def exit_code(result: result_model.Result) -> int:
    """0 all passed, 1 a gate failed, 3 the run could not complete (a scenario aborted, failed, was
    interrupted, or found its baseline not steady and injected nothing)."""
    if result.status != "completed":
        return 3
    ran = [s for s in result.scenarios if s.applicable]  # not applicable: not run, not failed
    stopped = ("aborted", "error", "interrupted", result_model.BASELINE_NOT_STEADY)
    if any(s.status in stopped or s.metrics is None for s in ran):
        return 3
    return 0 if result.passed else 1


def rerender(run_dir: Path, store: history.HistoryStore | None = None) -> result_model.Result:
    """`harness report RUN_DIR`: report.html, summary.md and junit.xml again from result.json, as
    it is (no re-scoring: that is `harness score`)."""
    rundir.check_run_dir(run_dir)
    path = run_dir / rundir.RESULT
    # An older version may have written the target's facts unmasked: they are masked as read.
    result = result_files.parse(rundir.redacted_facts(result_files.read(path).to_json()), path)
    write_outputs(run_dir, result, store, SeriesFiles(saved=True))
    return result


def _warn(text: str) -> None:
    print(text, file=sys.stderr)


def record(store: history.HistoryStore | None, result: result_model.Result, run_dir: Path, warn: Any) -> None:
    """Record the run in the history store; a store that fails costs the trend, not the run."""
    if store is None:
        return
    try:
        store.record(result, run_dir)
    except HarnessError as exc:
        warn(f"warning: the run was not recorded in the history store: {exc}")


class RunFolderError(HarnessError):
    """`harness score` met a run file it cannot read where the last result had numbers: it says
    which file (and line) and leaves result.json, summary.md and junit.xml as they were (exit 3)."""


def rescore(
    run_dir: Path, store: history.HistoryStore | None = None, warn: Any = _warn
) -> result_model.Result:
    """`harness score RUN_DIR`: result.json again from the folder alone (history gates still look
    only at runs that started before this one), and the run recorded again.

    Never worse than what is there: a damaged timeline, markers or scenario.json would otherwise
    replace good metrics with null or drop a scenario and pass, so the new result is written only
    if every scenario the last result scored is scored again."""
    from harness.plan import Plan

    rundir.check_run_dir(run_dir)
    plan = Plan.model_validate(rundir.read_json(run_dir / rundir.PLAN))
    previous = result_files.read(run_dir / rundir.RESULT)
    head = {k: v for k, v in previous.to_json().items() if k not in ("scenarios", "passed")}
    files = SeriesFiles(saved=True)  # each timeline read once, for scoring and the report
    try:
        result = assemble_result(run_dir, plan, head, store, files)
    except HarnessError as exc:
        raise RunFolderError(f"{exc}; {_LEFT_AS_IT_WAS}") from None
    if lost := _lost(run_dir, previous, result):
        raise RunFolderError("; ".join(lost) + f"; {_LEFT_AS_IT_WAS}")
    write_outputs(run_dir, result, store, files)
    record(store, result, run_dir, warn)
    return result


_LEFT_AS_IT_WAS = "result.json, summary.md and junit.xml are left as they were"


def _lost(run_dir: Path, previous: result_model.Result, result: result_model.Result) -> list[str]:
    """What scoring again would lose: scenarios no longer found, metrics no longer computed."""
    scored = {(s.name, s.trial): s for s in result.scenarios}
    lost = []
    for before in previous.scenarios:
        now = scored.get((before.name, before.trial))
        if now is None:
            path = rundir.scenario_dir(run_dir, before.name, before.trial) / SCENARIO_FILE
            lost.append(f"{path}: missing, so scenario {before.name}#{before.trial} would be dropped")
        elif before.metrics is not None and now.metrics is None:
            lost.append(f"scenario {before.name}#{before.trial}: {now.scoring_error or 'no metrics'}")
    return lost

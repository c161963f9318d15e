"""One scale for a comparison: every trial of a scenario judged with the same health thresholds.

Each trial in result.json was scored against thresholds resolved from its own baseline (twice its
p95 by default), so a side with a slower baseline tolerates more, and a fault that is an outage on
a fast cluster can read as no impact on a slow one. Per scenario of a comparison the thresholds are
resolved once instead: from the plan's SLOs where the reference plan sets them, the rest from the
reference (first) side's baseline windows of that scenario pooled into one window
(`scoring.pooled_thresholds`, latency bins merged exactly); then every trial of every side is scored
again with them, read from its run folder as `harness score` reads it (markers → phases, timeline →
Series). Each trial keeps its own plan's stability window and cost per hour: only the scale is shared.

Called by `runs.compare_runs` unless asked for each trial's own thresholds (`--own-thresholds`). A
trial whose folder lacks what scoring reads (an old or damaged run) keeps its recorded metrics, and
a warning names it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import scoring, timeline
from harness.plan import Plan
from harness.result import model as result_model
from harness.store import rundir, runview

if TYPE_CHECKING:
    from harness.compare.runs import Run, Side

OWN = "each trial's own baseline (--own-thresholds)"
"""The source of the thresholds when the comparison shares none."""


@dataclass(frozen=True)
class ScenarioScale:
    """The thresholds one scenario's trials were compared on, and where they came from."""

    scenario: str
    thresholds: Mapping[str, Any] | None
    """As result.json records them (`metrics.thresholds`); None: each trial kept its own."""
    source: str
    """In words: the plan's SLOs and/or the reference side's pooled baseline, or `OWN`."""
    rescored: int = 0
    """Trials scored again on this scale."""
    kept: int = 0
    """Trials that kept their recorded metrics (their folder lacked what scoring reads)."""

    @property
    def line(self) -> str:
        """One line for the report's notes."""
        if self.thresholds is None:
            return f"{self.scenario}: thresholds from {self.source}"
        values = ", ".join(f"{key} {_number(value)}" for key, value in self.thresholds.items())
        kept = f"; {self.kept} kept their recorded metrics" if self.kept else ""
        return (
            f"{self.scenario}: one scale for every side ({values}), from {self.source}; "
            f"{self.rescored} trials scored on it{kept}"
        )


@dataclass(frozen=True)
class Rescored:
    """One scenario's trials on one scale: their metrics by (run folder, trial), and what to warn of."""

    scale: ScenarioScale
    metrics: Mapping[tuple[Path, int], Mapping[str, Any]]
    warnings: tuple[str, ...] = ()

    def of(self, run: Run, trial: int) -> Mapping[str, Any] | None:
        """A trial's metrics on the scale; None when it keeps the ones it recorded."""
        return self.metrics.get((run.path, trial))


def own(scenario: str) -> Rescored:
    """No shared scale: every trial compared as it was scored (`--own-thresholds`)."""
    return Rescored(ScenarioScale(scenario, None, OWN), {})


def rescore(sides: Sequence[Side], scenario: str) -> Rescored:
    """Resolve the scenario's thresholds once (plan SLO, else the first side's pooled baseline)
    and score every scored trial of every side again with them."""
    trials = [
        (side.label, run, entry)
        for side in sides
        for run in side.runs
        for entry in run.result.scenarios
        if entry.name == scenario and entry.metrics is not None
    ]
    reference = sides[0].label
    settings: dict[Path, scoring.ScoringSettings | str] = {}
    for _, run, _ in trials:
        if run.path not in settings:
            settings[run.path] = _settings(run)
    files = timeline.SeriesFiles()  # the reference side's timelines are read once, for pooling and scoring
    read: dict[tuple[Path, int], tuple[timeline.Series, scoring.Phases] | str] = {
        (run.path, entry.trial): _read(run, entry, files)
        for label, run, entry in trials
        if label == reference
    }
    pooled = [found for found in read.values() if not isinstance(found, str)]
    first = next((settings[run.path] for label, run, _ in trials if label == reference), None)
    why = None
    if first is None or isinstance(first, str):
        why = "no scored trial" if first is None else first
    elif not pooled:
        unread = [f"{run.run_id} #{trial} ({found})" for (run, trial), found in _named(trials, read)]
        why = f"no baseline of it could be read: {'; '.join(unread)}"
    if why is not None or not isinstance(first, scoring.ScoringSettings):
        warning = (
            f"{scenario}: no common scale ({reference}, the reference side: {why}); "
            "every trial is compared as it was scored, on its own thresholds"
        )
        return Rescored(ScenarioScale(scenario, None, OWN), {}, (warning,))
    policy = first.policy
    try:
        limits = scoring.pooled_thresholds(policy, pooled)
    except ValueError as exc:  # histograms of different accuracies cannot be pooled
        warning = f"{scenario}: no common scale ({exc}); every trial is compared on its own thresholds"
        return Rescored(ScenarioScale(scenario, None, OWN), {}, (warning,))

    rescored: dict[tuple[Path, int], Mapping[str, Any]] = {}
    kept: dict[str, list[str]] = {}
    for label, run, entry in trials:
        key = (run.path, entry.trial)
        found = read.pop(key) if key in read else _read(run, entry, timeline.SeriesFiles())
        run_settings = settings[run.path]
        if isinstance(run_settings, str) or isinstance(found, str):
            reason = run_settings if isinstance(run_settings, str) else found
            kept.setdefault(label, []).append(f"{run.run_id} #{entry.trial} ({reason})")
            continue
        recorded = entry.metrics.as_mapping() if entry.metrics is not None else {}
        series, phases = found
        # data_loss comes from verify.json, which no threshold changes: the recorded value is it.
        metrics = scoring.score_scenario(
            series, phases, run_settings, data_loss=recorded.get("data_loss"), limits=limits
        )
        # Keys scoring does not make (control_plane) stay as recorded.
        rescored[key] = {**recorded, **metrics.to_dict()}
    source = _source(policy, reference, len(pooled))
    warnings = [
        f"{scenario} on {label}: {len(names)} trial(s) keep the metrics they recorded, on their own "
        f"thresholds, not on the comparison's scale: {'; '.join(names)}"
        for label, names in kept.items()
    ]
    scale = ScenarioScale(scenario, limits.to_dict(), source, len(rescored), sum(map(len, kept.values())))
    return Rescored(scale, rescored, tuple(warnings))


def recorded_differences(sides: Sequence[Side], scenario: str, scale: ScenarioScale) -> list[str]:
    """A warning when the trials of the scenario recorded different thresholds (each its own
    baseline's), naming the sides and values, and saying which scale the comparison used."""
    values: dict[str, dict[str, list[Any]]] = {}
    for side in sides:
        for run in side.runs:
            for entry in run.result.scenarios:
                if entry.name != scenario or entry.metrics is None:
                    continue
                recorded = entry.metrics.as_mapping().get("thresholds")
                for key, value in (recorded if isinstance(recorded, Mapping) else {}).items():
                    values.setdefault(key, {}).setdefault(side.label, []).append(value)
    differ = []
    for key, by_side in values.items():
        if len({repr(v) for found in by_side.values() for v in found}) > 1:
            sides_text = "; ".join(f"{label} {_spread(found)}" for label, found in by_side.items())
            differ.append(f"{key}: {sides_text}")
    if not differ:
        return []
    used = (
        "every trial is compared on its own (--own-thresholds)"
        if scale.thresholds is None
        else f"compared here on one scale, from {scale.source}"
    )
    return [f"{scenario}: the trials recorded different thresholds ({' / '.join(differ)}); {used}"]


def _named(
    trials: Sequence[tuple[str, Run, result_model.Scenario]], read: Mapping[tuple[Path, int], object]
) -> list[tuple[tuple[Run, int], object]]:
    """The trials read, by run and trial number, with what reading them gave."""
    return [
        ((run, entry.trial), read[(run.path, entry.trial)])
        for _, run, entry in trials
        if (run.path, entry.trial) in read
    ]


def _settings(run: Run) -> scoring.ScoringSettings | str:
    """The run's scoring settings from its plan.json, or why there are none."""
    try:
        return scoring.settings_for(Plan.model_validate(run.plan))
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        return f"plan.json is not a valid plan: {str(exc).splitlines()[0]}"


def _read(
    run: Run, entry: result_model.Scenario, files: timeline.SeriesFiles
) -> tuple[timeline.Series, scoring.Phases] | str:
    """A trial's Series and phases from its folder, as `harness score` reads them, or why not."""
    return runview.scoring_inputs(rundir.scenario_dir(run.path, entry.name, entry.trial), files)


def _source(policy: scoring.HealthPolicy, reference: str, trials: int) -> str:
    base = f"the pooled baseline of {reference} ({trials} trial{'s' if trials != 1 else ''})"
    slo = {
        k: getattr(policy, k) for k in ("error_rate", "p95_ms", "kpi_drop") if getattr(policy, k) is not None
    }
    if not slo:
        return base
    return f"the plan's SLO ({', '.join(f'{k} {_number(v)}' for k, v in slo.items())}), the rest from {base}"


def _spread(found: Iterable[Any]) -> str:
    """Values as they were recorded: all of them when few, else their range."""
    distinct = list(dict.fromkeys(found))
    numbers = [v for v in distinct if isinstance(v, int | float) and not isinstance(v, bool)]
    if len(distinct) > 3 and len(numbers) == len(distinct):
        return f"{_number(min(numbers))} to {_number(max(numbers))} ({len(distinct)} values)"
    return ", ".join(_number(v) for v in distinct)


def _number(value: Any) -> str:
    if value is None:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)

"""Run directories → a comparison: sides (labels), pooled trials per scenario and metric, warnings.

`harness compare RUN_DIR… [--label NAME=RUN_DIR…]` calls `compare_runs`, then `render`. A side
is every run sharing a label. The first side is the baseline and every other side is compared
against it per scenario and metric; `page` decides the units (trials in a shared batch, runs,
or no verdict for one run a side) and shares alpha over the page. What makes the comparison unfair or
incomplete (plans that differ, scenarios on one side only, trials that were not scored) is
collected as warnings for the report rather than hidden or refused: only inputs that leave
nothing to compare are errors.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydantic

from harness import plan as plan_package
from harness.compare import differences, page, scale, stats
from harness.errors import FileInputError, InputError
from harness.plan import gates
from harness.result import files as result_files
from harness.result import metrics as metric_registry
from harness.result import model as result_model
from harness.store import rundir

# --- metrics ------------------------------------------------------------------------------

Unit = metric_registry.Unit


@dataclass(frozen=True)
class MetricSpec:
    """What a metric means for a comparison: its good direction, unit, and what null says."""

    name: str
    better: stats.Better
    unit: Unit
    null_means: str | None = None
    """For metrics whose null can be an outcome (censored: did not recover, no impact, stalled),
    the words for it; None: a null is simply not measured and the trial has no value."""

    def null_value(self, metrics: Mapping[str, Any]) -> float | None:
        """What a null stands for in this trial: +inf or -inf when an outcome, None when unmeasured."""
        return metric_registry.BY_NAME[self.name].null_value(metrics)


def metric_spec(name: str) -> MetricSpec:
    """The spec of a result.json metric (dotted for nested ones); InputError naming --metric."""
    info = metric_registry.get(name)
    if not info.comparable:
        raise InputError(f"--metric: {name!r} is not compared")
    outcome = info.null is not metric_registry.Null.NOT_MEASURED
    return MetricSpec(info.name, info.better, info.unit, info.null_words if outcome else None)


DEFAULT_METRICS: tuple[str, ...] = metric_registry.compare_defaults()
"""What a user asks first: how fast it recovered, how much failed, what it cost, was data lost.
A default metric that no trial has (older results lack recovery_after_fault_end_s) is dropped."""


# --- runs and sides -----------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One run directory's plan.json and result.json."""

    path: Path
    plan: Mapping[str, Any]
    result: result_model.Result

    @property
    def run_id(self) -> str:
        return self.result.run_id or self.path.name

    @property
    def plan_name(self) -> str:
        return str(self.plan.get("name") or self.result.plan.name or "?")

    @property
    def status(self) -> str:
        return self.result.status or "?"

    @property
    def target(self) -> str:
        """The target in a few words: `testbed managed`, `kubernetes eks-prod`."""
        target = {**(self.plan.get("target") or {}), **self.result.target.model_dump()}
        kind = str(target.get("kind") or "?")
        if kind == "kubernetes":
            return f"kubernetes {target.get('context') or 'in-cluster'}"
        return f"{kind} {target['profile']}" if target.get("profile") else kind

    @property
    def scenario_names(self) -> list[str]:
        """The plan's scenarios in order (the result's, if the plan lists none)."""
        names = [s.get("name") for s in self.plan.get("scenarios") or []]
        names += [s.name for s in self.result.scenarios]
        return list(dict.fromkeys(str(n) for n in names if n))


def read_run(path: Path, argument: str = "RUN_DIR") -> Run:
    """Read a run directory; InputError naming `argument` when it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(f"{argument}: {path} is not a directory")
    for name in (rundir.PLAN, rundir.RESULT):
        if not (path / name).is_file():
            raise InputError(f"{argument}: {path} has no {name}; is it a run directory?")
    plan = rundir.read_json(path / rundir.PLAN)
    if not isinstance(plan, dict):
        raise FileInputError(path / rundir.PLAN, "not a JSON object")
    result = result_files.read(path / rundir.RESULT)
    return Run(path=path, plan=plan, result=result)


def default_label(run: Run) -> str:
    """A side's name when none is given: the target and the run id, unique per run."""
    return f"{run.target} {run.run_id}"


def parse_label_options(options: Sequence[str]) -> dict[str, list[Path]]:
    """`--label NAME=RUN_DIR` options → {NAME: [RUN_DIR, …]}, in order; a repeated NAME pools."""
    labels: dict[str, list[Path]] = {}
    for option in options:
        name, sep, path = option.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise InputError(f"--label: {option!r} is not NAME=RUN_DIR")
        labels.setdefault(name.strip(), []).append(Path(path.strip()))
    return labels


@dataclass(frozen=True)
class Side:
    """Runs compared as one: their trials are pooled."""

    label: str
    runs: tuple[Run, ...]


def assign_sides(run_dirs: Sequence[Path], labels: Mapping[str, Sequence[Path]] | None = None) -> list[Side]:
    """Read the runs and group them by label, in order of first appearance (first: baseline).

    Run directories come from RUN_DIR arguments, then from --label options not already given;
    a run without a --label gets `default_label`. The same directory twice counts once."""
    given: dict[Path, str] = {}
    for name, paths in (labels or {}).items():
        for path in paths:
            key = Path(path).resolve()
            if given.get(key, name) != name:
                raise InputError(f"--label: {path} is given to both {given[key]!r} and {name!r}")
            given[key] = name
    order: list[tuple[Path, str]] = [(Path(p), "RUN_DIR") for p in run_dirs]
    order += [(Path(p), f"--label {name}") for name, paths in (labels or {}).items() for p in paths]
    seen: set[Path] = set()
    grouped: dict[str, list[Run]] = {}
    for path, argument in order:
        key = path.resolve()
        if key in seen:
            continue
        seen.add(key)
        run = read_run(path, argument)
        grouped.setdefault(given.get(key) or default_label(run), []).append(run)
    if len(grouped) < 2:
        only = next(iter(grouped), "nothing")
        raise InputError(
            f"RUN_DIR: a comparison needs at least two sides, got {only!r} only "
            "(give runs of another target, or name sides with --label NAME=RUN_DIR)"
        )
    return [Side(label, tuple(runs)) for label, runs in grouped.items()]


# --- the report model ---------------------------------------------------------------------


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one scenario: each side's summary, each other side against the baseline."""

    spec: MetricSpec
    summaries: dict[str, stats.Summary]
    """Per label, for the sides that ran the scenario (baseline first)."""
    missing: dict[str, int]
    """Per label, trials with no value for this metric (not scored, or null meaning unmeasured)."""
    comparisons: dict[str, stats.Comparison]
    """Per non-baseline label."""
    primary: bool = False
    """The scenario's primary metric: tested first, at the comparison's share of alpha."""
    run_medians: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per label, each run's median (±inf censored), for the spread between runs."""

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(frozen=True)
class ScenarioComparison:
    name: str
    labels: tuple[str, ...]
    """The sides that ran this scenario, baseline first."""
    trials: dict[str, int]
    unscored: dict[str, int]
    """Per label, trials without metrics (errored, interrupted): counted as missing in every metric."""
    metrics: tuple[MetricComparison, ...]
    primary: str = ""
    """The primary metric's name (the plan's, or recovery_time_s)."""
    not_applicable: dict[str, str] = field(default_factory=dict)
    """Per label, why the scenario did not apply to that side's target (a managed control plane):
    it was not run there, so that side has no trials, no comparison and no verdict. When the
    baseline is one of them, no side is compared for this scenario (`labels` is empty)."""

    def verdicts(self, label: str) -> dict[stats.Verdict, list[MetricComparison]]:
        """The metrics of one other side grouped by verdict, for the scenario's verdict line."""
        grouped: dict[stats.Verdict, list[MetricComparison]] = {}
        for metric in self.metrics:
            if label in metric.comparisons:
                grouped.setdefault(metric.comparisons[label].verdict, []).append(metric)
        return grouped


@dataclass(frozen=True)
class ComparisonReport:
    sides: tuple[Side, ...]
    alpha: float
    confidence: float
    metrics: tuple[str, ...]
    scenarios: tuple[ScenarioComparison, ...]
    warnings: tuple[str, ...] = field(default=())
    correction: str = stats.Correction.HOLM.value
    """How secondary metrics share a comparison's level: holm or bh."""
    comparisons: int = 1
    """Comparisons on the page (scenario and other side); alpha is split evenly over them."""

    @property
    def level(self) -> float:
        """Each comparison's share of alpha."""
        return page.comparison_level(self.alpha, self.comparisons)

    thresholds: tuple[scale.ScenarioScale, ...] = field(default=())
    """Per scenario, the health thresholds its trials were compared on and where they came from."""
    findings: tuple[differences.FindingDifference, ...] = field(default=())
    """Findings (docs/findings.md) fired in a different share of trials or runs on some side."""

    @property
    def baseline(self) -> str:
        return self.sides[0].label

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(side.label for side in self.sides)

    @property
    def min_trials(self) -> int:
        """Trials per side the exact test needs to reach a comparison's level at all."""
        return stats.min_trials_for(self.level)


# --- warnings -----------------------------------------------------------------------------


_LOAD_IGNORED = {"host"}
"""The load's host differs between targets by design; it says where, not how much."""


def _plan_facts(plan: Mapping[str, Any], scenarios: Sequence[str]) -> dict[str, Any]:
    """The plan settings that change what is measured, as dotted keys, for spotting differences."""
    facts: dict[str, Any] = {"name": plan.get("name")}
    for section in ("load", "windows", "slo", "cost"):
        for key, value in (plan.get(section) or {}).items():
            if section == "load" and key in _LOAD_IGNORED:
                continue
            if key == "locustfile" and value:
                value = Path(str(value)).name  # the same file checked out elsewhere is the same
            facts[f"{section}.{key}"] = value
    facts["abort"] = plan.get("abort")
    facts["compare"] = _compare_facts(plan.get("compare"))
    for scenario in plan.get("scenarios") or []:
        if scenario.get("name") in scenarios:
            experiment = scenario.get("experiment")
            facts[f"scenarios.{scenario['name']}.experiment"] = (
                Path(str(experiment)).name if experiment else None
            )
            facts[f"scenarios.{scenario['name']}.vars"] = scenario.get("vars") or {}
    return facts


def _compare_facts(raw: Any) -> Any:
    """The compare settings with defaults filled in, so an older plan.json without them agrees."""
    try:
        return plan_package.CompareSettings.model_validate(raw or {}).model_dump(mode="json")
    except pydantic.ValidationError:
        return raw  # refused later, for the baseline; shown as given for the others


def _plan_warnings(sides: Sequence[Side], scenarios: Sequence[str]) -> list[str]:
    reference = sides[0].runs[0]
    ref_facts = _plan_facts(reference.plan, scenarios)
    found: list[str] = []
    for side in sides:
        for run in side.runs:
            if run is reference:
                continue
            facts = _plan_facts(run.plan, scenarios)
            for key in sorted(set(ref_facts) | set(facts)):
                if key.startswith("scenarios.") and not (key in ref_facts and key in facts):
                    continue  # a scenario on one side only has its own warning
                mine, theirs = ref_facts.get(key), facts.get(key)
                if mine != theirs:
                    found.append(
                        f"plans differ on {key}: {mine!r} in {reference.run_id} ({sides[0].label}) "
                        f"vs {theirs!r} in {run.run_id} ({side.label}); the comparison may be unfair"
                    )
    return found


def _status_warnings(sides: Sequence[Side]) -> list[str]:
    return [
        f"run {run.run_id} ({side.label}) has status {run.status!r}: its results may be incomplete"
        for side in sides
        for run in side.runs
        if run.status != "completed"
    ]


# --- building the report ------------------------------------------------------------------


def _not_applicable(side: Side, scenario: str) -> str | None:
    """Why `scenario` did not apply on `side`, when none of its runs ran it for that reason; None
    when any run has a trial of it (or never reached it)."""
    entries = [e for run in side.runs for e in run.result.scenarios if e.name == scenario]
    if entries and all(e.not_applicable for e in entries):
        return "; ".join(dict.fromkeys(str(e.not_applicable) for e in entries))
    return None


def _entries(side: Side, scenario: str, scaled: scale.Rescored) -> list[tuple[Run, Mapping[str, Any] | None]]:
    """Each trial of `scenario` on `side` with its metrics on the comparison's scale, or as
    result.json has them where it keeps its own (None: not scored)."""
    return [
        (
            run,
            scaled.of(run, entry.trial)
            or (entry.metrics.as_mapping() if entry.metrics is not None else None),
        )
        for run in side.runs
        for entry in run.result.scenarios
        if entry.name == scenario and entry.applicable
    ]


def _trial_count(side: Side, scenario: str) -> int:
    return sum(1 for run in side.runs for e in run.result.scenarios if e.name == scenario and e.applicable)


def _sample(entries: Sequence[tuple[Run, Mapping[str, Any] | None]], spec: MetricSpec) -> page.Sample:
    """The trials' values (censored outcomes as ±inf), their runs and batches, and how many had none."""
    values: list[float] = []
    runs: list[str] = []
    batches: list[str | None] = []
    missing = 0
    for run, metrics in entries:
        value = gates.lookup(metrics, spec.name) if metrics is not None else gates.MISSING
        if value is None and metrics is not None:
            value = spec.null_value(metrics)
        if value is None or value is gates.MISSING or not isinstance(value, bool | int | float):
            missing += 1
            continue
        values.append(float(value))
        runs.append(run.run_id)
        batches.append(run.result.batch)
    return page.Sample(tuple(values), tuple(runs), tuple(batches), missing)


def _compare_settings(run: Run) -> tuple[str, dict[str, float], str, dict[str, str], tuple[str, ...]]:
    """The plan's compare settings (primary, margins, correction), each scenario's primary, and
    the metrics the plan compares (empty: the defaults).

    Older plan.json files have none: the model's defaults. A plan.json edited by hand is
    validated as the plan loader would, so a wrong metric name is an input error here too."""
    raw = run.plan.get("compare") or {}
    try:
        settings = plan_package.CompareSettings.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = "; ".join(f"compare.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise FileInputError(run.path / rundir.PLAN, problems) from None
    primaries: dict[str, str] = {}
    for scenario in run.plan.get("scenarios") or []:
        if scenario.get("primary"):
            name = str(scenario["primary"])
            metric_spec(name)  # an unknown or uncompared name: InputError naming the metric
            primaries[str(scenario.get("name"))] = name
    return settings.primary, dict(settings.margins), settings.correction, primaries, settings.metrics


def compare_runs(
    run_dirs: Sequence[Path],
    labels: Mapping[str, Sequence[Path]] | None = None,
    alpha: float = 0.05,
    metrics: Sequence[str] | None = None,
    confidence: float = 0.95,
    correction: str | None = None,
    own_thresholds: bool = False,
) -> ComparisonReport:
    """Read the runs and compare every side against the first, every trial judged on one scale
    per scenario (`scale`; own_thresholds: each on its own, as scored); `correction` overrides
    the plan's."""
    if not 0 < alpha < 1:
        raise InputError(f"--alpha: must be between 0 and 1, not {alpha}")
    if not 0 < confidence < 1:
        raise InputError(f"--confidence: must be between 0 and 1, not {confidence}")
    sides = assign_sides(run_dirs, labels)
    baseline = sides[0]
    default_primary, margins, plan_correction, primaries, plan_metrics = _compare_settings(baseline.runs[0])
    specs = [metric_spec(name) for name in dict.fromkeys(metrics or plan_metrics or DEFAULT_METRICS)]

    names_of = {
        side.label: list(dict.fromkeys(n for r in side.runs for n in r.scenario_names)) for side in sides
    }
    compared = [
        name for name in names_of[baseline.label] if any(name in names_of[side.label] for side in sides[1:])
    ]
    if not compared:
        listing = "; ".join(f"{label}: {', '.join(names) or 'none'}" for label, names in names_of.items())
        raise InputError(f"RUN_DIR: the runs' plans have no scenario in common ({listing})")

    not_applicable = {
        name: {side.label: reason for side in sides if (reason := _not_applicable(side, name)) is not None}
        for name in compared
    }

    def measured(name: str) -> list[Side]:
        """The sides that ran `name`: none when the baseline could not, so nothing is compared."""
        if baseline.label in not_applicable[name]:
            return []
        return [s for s in sides if name in names_of[s.label] and s.label not in not_applicable[name]]

    warnings: list[str] = []
    all_names = list(dict.fromkeys(n for names in names_of.values() for n in names))
    for name in all_names:
        having = [label for label, names in names_of.items() if name in names]
        if name not in compared:
            warnings.append(f"scenario {name!r} is only in {', '.join(having)}: not compared")
        elif len(having) < len(sides):
            missing_in = [s.label for s in sides if s.label not in having]
            warnings.append(f"scenario {name!r} is not in {', '.join(missing_in)}")
    warnings += _plan_warnings(sides, compared)
    warnings += _status_warnings(sides)

    chosen = correction or plan_correction
    if chosen not in {c.value for c in stats.Correction}:
        raise InputError(f"--correction: expected 'holm' or 'bh', not {chosen!r}")
    pairs = sum(
        len(measured(name)[1:]) for name in compared
    )  # the page's comparisons: alpha is shared over them (a side where a scenario did not apply is none)
    level = page.comparison_level(alpha, pairs)

    scenarios: list[ScenarioComparison] = []
    families: dict[tuple[str, str], list[page.Cell]] = {}
    scales: list[scale.ScenarioScale] = []
    for name in compared:
        present = measured(name)
        if len(present) < 2:  # not applicable on the baseline, or on every other side: no verdict
            scenarios.append(
                ScenarioComparison(
                    name=name,
                    labels=tuple(side.label for side in present),
                    trials={side.label: _trial_count(side, name) for side in present},
                    unscored={},
                    metrics=(),
                    primary=primaries.get(name, default_primary),
                    not_applicable=not_applicable[name],
                )
            )
            continue
        scaled = scale.own(name) if own_thresholds else scale.rescore(present, name)
        warnings += [*scaled.warnings, *scale.recorded_differences(present, name, scaled.scale)]
        scales.append(scaled.scale)
        entries = {side.label: _entries(side, name, scaled) for side in present}
        unscored = {label: sum(metrics is None for _, metrics in found) for label, found in entries.items()}
        for label, count in unscored.items():
            if count:
                warnings.append(
                    f"{name} on {label}: {count} of {len(entries[label])} trials have no metrics "
                    "(not completed or not scored) and are left out"
                )
        primary = primaries.get(name, default_primary)
        scenario_specs = [metric_spec(primary), *(s for s in specs if s.name != primary)]
        rows: list[MetricComparison] = []
        for spec in scenario_specs:
            samples = {label: _sample(found, spec) for label, found in entries.items()}
            if (
                metrics is None
                and spec.name != primary
                and not any(
                    gates.lookup(metrics or {}, spec.name) is not gates.MISSING
                    for found in entries.values()
                    for _, metrics in found
                )
            ):
                continue  # a default metric these results do not have (older schema)
            summaries = {
                label: stats.summarize(sample.values, confidence) for label, sample in samples.items()
            }
            comparisons = {
                label: page.compare_samples(
                    samples[baseline.label], sample, spec.better, level, confidence, margins.get(spec.name)
                )
                for label, sample in samples.items()
                if label != baseline.label
            }
            for label, comparison in comparisons.items():
                cell = page.Cell(spec.name, spec.better, spec.name == primary, comparison)
                families.setdefault((name, label), []).append(cell)
            rows.append(
                MetricComparison(
                    spec=spec,
                    summaries=summaries,
                    missing={label: sample.missing for label, sample in samples.items()},
                    comparisons=comparisons,
                    primary=spec.name == primary,
                    run_medians={label: sample.run_medians() for label, sample in samples.items()},
                )
            )
        scenarios.append(
            ScenarioComparison(
                name=name,
                labels=tuple(side.label for side in present),
                trials={label: len(found) for label, found in entries.items()},
                unscored=unscored,
                metrics=tuple(rows),
                primary=primary,
                not_applicable=not_applicable[name],
            )
        )

    decided = page.decide_page(families, alpha, chosen)
    final: list[ScenarioComparison] = []
    for scenario in scenarios:
        by_metric: dict[tuple[str, str], stats.Comparison] = {
            (cell.metric, label): cell.comparison
            for label in scenario.labels[1:]
            for cell in decided.get((scenario.name, label), [])
        }
        rows = [
            dataclasses.replace(
                row, comparisons={label: by_metric[(row.name, label)] for label in row.comparisons}
            )
            for row in scenario.metrics
        ]
        final.append(dataclasses.replace(scenario, metrics=tuple(rows)))
    return ComparisonReport(
        sides=tuple(sides),
        alpha=alpha,
        confidence=confidence,
        metrics=tuple(spec.name for spec in specs),
        scenarios=tuple(final),
        warnings=tuple(warnings),
        correction=chosen,
        comparisons=pairs,
        thresholds=tuple(scales),
        findings=differences.differing(sides, compared),
    )

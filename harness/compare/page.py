"""How a comparison page decides: which units each test compares, and how the page shares alpha.

`runs.py` gathers each side's trials of a metric as a Sample (values with the run and batch of
each), calls `compare_samples` per metric and side, then `decide_page` once. Pure, so the A/A
simulations (tests/compare/test_page.py, benchmarks/compare_aa.py) call it directly.

Units. Trials of one run share that run's conditions (the cluster that night, its neighbours),
so pooling them as independent turns run-to-run luck into "differences":
- Runs that share a `batch` (one command interleaved the targets; trial k of each ran in the
  same slot) are compared trial by trial, stratified by batch: what a batch's conditions did
  to one side they did to the other.
- Sides of two or more separate runs each are compared by their run medians: the run is the unit.
- One separate run on a side: run-to-run variation cannot be told from a difference. No verdict;
  the page says to interleave or to make more runs.

Alpha. The chance of any false "better" or "worse" on the page stays under alpha: alpha is split
evenly over the page's comparisons (scenario and other side, Bonferroni); within one, the primary
metric is tested first, and the other metrics only if the primary differed (a fixed sequence),
under Holm (or Benjamini-Hochberg). A secondary metric whose primary did not differ is
"inconclusive", with its p shown.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from harness.compare import stats

Verdict = stats.Verdict

MIN_RUNS_ADVICE = 4
"""Runs per side with which a run-level test can reach p < 0.05 (2 / C(8, 4) = 0.029)."""


@dataclass(frozen=True)
class Sample:
    """One side's trials of one metric: values (censored as ±inf) and where each came from."""

    values: tuple[float, ...]
    runs: tuple[str, ...]
    """The run id of each value."""
    batches: tuple[str | None, ...]
    """The batch of each value's run; None: a run of its own."""
    missing: int = 0
    """Trials without a value (not measured, not scored)."""

    @property
    def trials(self) -> int:
        return len(self.values) + self.missing

    def run_medians(self) -> dict[str, float]:
        """Each run's median (censored trials included as ±inf), in order of first appearance."""
        medians: dict[str, float] = {}
        for run in dict.fromkeys(self.runs):
            mine = np.array([v for v, r in zip(self.values, self.runs, strict=True) if r == run])
            value = float(np.median(mine))
            if not math.isnan(value):  # as many censored below as above: no median at all
                medians[run] = value
        return medians


class Design(StrEnum):
    """What the test compares; the value is the words the page uses."""

    BATCH = "trials, stratified by batch"
    RUNS = "runs"
    ONE_RUN = "trials of one run"


def design(base: Sample, other: Sample) -> Design:
    """Batches when every run of both sides is in a batch holding both; runs with 2+ on each side."""
    base_batches, other_batches = set(base.batches), set(other.batches)
    if base_batches and None not in base_batches and base_batches == other_batches:
        return Design.BATCH
    if len(set(base.runs)) >= 2 and len(set(other.runs)) >= 2:
        return Design.RUNS
    return Design.ONE_RUN


def _share(sample: Sample) -> str:
    return f"{sample.missing} of {sample.trials}"


def compare_samples(
    base: Sample,
    other: Sample,
    better: stats.Better,
    level: float,
    confidence: float = 0.95,
    margin: float | None = None,
) -> stats.Comparison:
    """The other side against the baseline at this comparison's `level`, in the right units."""
    chosen = design(base, other)
    if chosen is Design.BATCH:
        comparison = stats.compare(
            base.values, other.values, better, level, confidence, margin=margin,
            baseline_strata=base.batches, other_strata=other.batches, units=chosen.value,
        )  # fmt: skip
    elif chosen is Design.RUNS:
        comparison = stats.compare(
            list(base.run_medians().values()), list(other.run_medians().values()), better, level,
            confidence, margin=margin, units=chosen.value,
        )  # fmt: skip
    else:
        comparison = stats.compare(
            base.values, other.values, better, level, confidence, margin=margin, units=chosen.value
        )
    if comparison.verdict is Verdict.NO_DATA:
        return comparison
    base_share = base.missing / base.trials if base.trials else 0.0
    other_share = other.missing / other.trials if other.trials else 0.0
    if not math.isclose(base_share, other_share):
        return dataclasses.replace(
            comparison,
            verdict=Verdict.NO_VERDICT,
            reason=(
                f"values missing on {_share(other)} trials against {_share(base)} on the baseline: "
                "the missing trials could be the best or the worst"
            ),
        )
    if chosen is Design.ONE_RUN:
        return dataclasses.replace(
            comparison,
            verdict=Verdict.NO_VERDICT,
            reason=(
                "a side with a single run: that run's own conditions cannot be told apart from a difference "
                f"(interleave the targets in one batch, or make {MIN_RUNS_ADVICE} or more runs a side)"
            ),
        )
    return comparison


@dataclass(frozen=True)
class Cell:
    """One metric of one comparison on the page."""

    metric: str
    better: stats.Better
    primary: bool
    comparison: stats.Comparison


TESTED = (Verdict.BETTER, Verdict.WORSE, Verdict.EQUIVALENT, Verdict.INCONCLUSIVE)
"""Verdicts that come from a test; the others (no data, too few, no verdict) stay as they are."""


def comparison_level(alpha: float, comparisons: int) -> float:
    """Each comparison's share of the page's alpha."""
    return alpha / max(1, comparisons)


def decide_page(
    families: Mapping[object, Sequence[Cell]],
    alpha: float,
    correction: stats.Correction | str = stats.Correction.HOLM,
) -> dict[object, list[Cell]]:
    """Adjusted p-values and verdicts for every cell; families are the page's comparisons."""
    correction = stats.Correction(correction)
    k = max(1, len(families))
    across = f"Bonferroni over {k} comparisons" if k > 1 else ""
    decided: dict[object, list[Cell]] = {}
    for key, cells in families.items():
        out = list(cells)
        primary = next((i for i, c in enumerate(cells) if c.primary), None)
        gate_open = False
        if primary is not None and cells[primary].comparison.verdict in TESTED:
            cell = cells[primary]
            p = cell.comparison.p_value or 1.0
            adjusted = dataclasses.replace(
                cell.comparison, p_adjusted=min(1.0, k * p), adjustment=across or "none"
            )
            out[primary] = dataclasses.replace(cell, comparison=stats.decide(adjusted, cell.better, alpha))
            gate_open = out[primary].comparison.verdict in (Verdict.BETTER, Verdict.WORSE)
        secondary = [i for i, c in enumerate(cells) if not c.primary and c.comparison.verdict in TESTED]
        raw = [cells[i].comparison.p_value or 1.0 for i in secondary]
        name = "Holm" if correction is stats.Correction.HOLM else "Benjamini-Hochberg"
        words = f"{name} over {len(secondary)} secondary metrics" + (f", {across}" if across else "")
        for i, p_adj in zip(secondary, stats.adjust(raw, correction), strict=True):
            cell = cells[i]
            adjusted = dataclasses.replace(cell.comparison, p_adjusted=min(1.0, k * p_adj), adjustment=words)
            result = stats.decide(adjusted, cell.better, alpha)
            if not gate_open and result.verdict in (Verdict.BETTER, Verdict.WORSE):
                first = cells[primary].metric if primary is not None else "the primary metric"
                result = dataclasses.replace(
                    result,
                    verdict=Verdict.INCONCLUSIVE,
                    reason=(
                        f"{result.reason.split(';')[0]}; not judged: {first} (primary) did not differ, "
                        "and the other metrics are judged only after it"
                    ),
                )
            out[i] = dataclasses.replace(cell, comparison=result)
        decided[key] = out
    return decided

"""Seeded comparison pages for the A/A and power simulations (tests/compare/test_page.py and
benchmarks/compare_aa.py): samples built the way runs produce them, judged by harness.compare.page.

A page has `scenarios` scenarios of the ten default-like metrics below, two sides, `trials`
trials a side. Each trial has one latent "how bad was it" factor that drives every metric
(so metrics are correlated, as recovery time, downtime, error rate and score are), plus the
conditions it ran in: a run effect (the run's own luck, half the variance by default) and, when
interleaved, a time-slot effect both sides share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harness.compare import page, stats

Better = stats.Better


@dataclass(frozen=True)
class MetricModel:
    name: str
    better: Better
    centre: float
    scale: float
    kind: str = "continuous"
    """continuous, count (Poisson, many ties), or censored (+inf beyond `cap`, did not recover)."""
    loading: float = 1.0
    """How strongly the latent factor drives this metric (negative: higher is better)."""


METRICS: tuple[MetricModel, ...] = (
    MetricModel("recovery_time_s", Better.LOWER, 20.0, 4.0, "censored"),
    MetricModel("recovery_after_fault_end_s", Better.LOWER, 8.0, 2.0, "censored", 0.9),
    MetricModel("time_to_impact_s", Better.HIGHER, 3.0, 0.8, loading=-0.5),
    MetricModel("error_rate", Better.LOWER, 0.05, 0.01, loading=0.8),
    MetricModel("availability", Better.HIGHER, 0.8, 0.04, loading=-0.8),
    MetricModel("latency_ms.fault.p99", Better.LOWER, 400.0, 80.0, loading=0.6),
    MetricModel("kpi_lost", Better.LOWER, 6.0, 0.0, "count", 0.7),
    MetricModel("downtime_s", Better.LOWER, 18.0, 4.0, loading=0.95),
    MetricModel("data_loss", Better.LOWER, 0.3, 0.0, "count", 0.2),
    MetricModel("resilience_score", Better.HIGHER, 60.0, 6.0, loading=-0.9),
)
"""Ten metrics: two censored, two counts with ties, the rest continuous and correlated."""


def _values(model: MetricModel, latent: np.ndarray, rng: np.random.Generator, shift: float) -> np.ndarray:
    """The metric for trials with this latent factor (in SDs); shift in SDs of the latent."""
    load = abs(model.loading)
    noise = rng.normal(0, 1, latent.shape)
    z = model.loading * (latent + shift) + math.sqrt(max(0.0, 1 - load * load)) * noise
    if model.kind == "count":
        return rng.poisson(model.centre * np.exp(0.4 * z)).astype(float)
    values = model.centre + model.scale * z
    if model.kind == "censored":
        values = np.where(
            values > model.centre + 2.2 * model.scale, math.inf, values
        )  # ~1.5 % did not recover
    return values


def _sample(values: np.ndarray, runs: list[str], batches: list[str | None]) -> page.Sample:
    return page.Sample(tuple(float(v) for v in values), tuple(runs), tuple(batches))


def simulate_page(
    rng: np.random.Generator,
    *,
    scenarios: int = 7,
    trials: int = 5,
    runs_per_side: int = 1,
    interleaved: bool = True,
    run_share: float = 0.5,
    shift_sd: float = 0.0,
    alpha: float = 0.05,
    correction: str = "holm",
    naive: bool = False,
) -> dict[object, list[page.Cell]]:
    """One page judged by harness.compare.page: the other side shifted by `shift_sd` latent SDs
    on every metric of the first scenario (0: an A/A page). `naive`: the former rule instead,
    every metric at alpha on pooled trials (with the exact test), for contrast."""
    per_run = trials // runs_per_side
    families: dict[object, list[page.Cell]] = {}
    level = page.comparison_level(alpha, scenarios)
    run_sd, trial_sd = math.sqrt(run_share), math.sqrt(1 - run_share)
    for scenario in range(scenarios):
        latents: dict[str, tuple[np.ndarray, list[str], list[str | None]]] = {}
        slots = rng.normal(0, run_sd, (runs_per_side, per_run))  # shared conditions when interleaved
        for side in ("a", "b"):
            parts, runs, batches = [], [], []
            for r in range(runs_per_side):
                # Interleaved: the slot's conditions, shared by both sides; else the run's own luck.
                conditions = slots[r] if interleaved else np.full(per_run, rng.normal(0, run_sd))
                parts.append(conditions + rng.normal(0, trial_sd, per_run))
                runs += [f"{side}{r}"] * per_run
                batches += [f"batch{r}" if interleaved else None] * per_run
            latents[side] = (np.concatenate(parts), runs, batches)
        cells = []
        for index, model in enumerate(METRICS):
            shift = shift_sd if scenario == 0 else 0.0
            a_latent, a_runs, a_batches = latents["a"]
            b_latent, b_runs, b_batches = latents["b"]
            base = _sample(_values(model, a_latent, rng, 0.0), a_runs, a_batches)
            other = _sample(_values(model, b_latent, rng, shift), b_runs, b_batches)
            if naive:
                comparison = stats.compare(base.values, other.values, model.better, alpha)
            else:
                comparison = page.compare_samples(base, other, model.better, level)
            cells.append(page.Cell(model.name, model.better, index == 0, comparison))
        families[scenario] = cells
    return families if naive else page.decide_page(families, alpha, correction)


def claims(decided: dict[object, list[page.Cell]]) -> list[tuple[object, str, stats.Verdict]]:
    """Every "better" or "worse" on the page."""
    return [
        (key, cell.metric, cell.comparison.verdict)
        for key, cells in decided.items()
        for cell in cells
        if cell.comparison.verdict in (stats.Verdict.BETTER, stats.Verdict.WORSE)
    ]


def pages_with_claims(pages: int, seed: int, **settings: object) -> float:
    """The share of A/A pages with any "better" or "worse" (the page-wise false-claim rate)."""
    rng = np.random.default_rng(seed)
    hits = sum(bool(claims(simulate_page(rng, **settings))) for _ in range(pages))  # type: ignore[arg-type]
    return hits / pages


def power(pages: int, seed: int, **settings: object) -> float:
    """The share of pages on which the first scenario's primary metric is found to differ."""
    rng = np.random.default_rng(seed)
    found = 0
    for _ in range(pages):
        decided = simulate_page(rng, **settings)  # type: ignore[arg-type]
        found += decided[0][0].comparison.verdict in (stats.Verdict.BETTER, stats.Verdict.WORSE)
    return found / pages

"""The engine's recovery watch, kept across checks of a growing timeline, answers what scoring does.

The watch judges only the buckets that are new or changed since its last check; these tests grow a
timeline second by second, with late deltas for earlier seconds (the baseline's too), and compare
at every step the kept watch with a fresh one and with `score_scenario`'s `recovered_t`.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.scoring import HealthPolicy, RecoveryWatch, ScoringSettings, health, score_scenario
from harness.timeline import Series, TimelineFile
from tests.scoring.timelines import CATALOG, HEADER, PURCHASE, T0, bucket, phases

SECONDS = 80
PHASES = phases(baseline_s=5.0, fault_s=30.5, fault_end_s=40.2, end_s=SECONDS)

MODES: dict[str, dict[str, dict[str, Any]]] = {
    "fail": {"catalog": {"failures": 10}},
    "slow": {"catalog": {"corrected_ms": 400.0}},
    "no_kpi": {"purchase": {"kpi": 0}},
}
"""A second's lines made unhealthy (a stall, no bucket line at all, is the fourth mode)."""

DELTAS: dict[str, dict[str, Any]] = {
    "fail": {**CATALOG, "requests": 10, "failures": 10},
    "heal": {**CATALOG, "requests": 400},
    "slow": {**CATALOG, "requests": 60, "latency_ms": 900.0},
    "kpi": {**PURCHASE, "requests": 1, "kpi": 6},
}
"""A late line for an earlier second: more failures, enough good requests to heal it, latency, KPI."""

Rule = Callable[..., np.ndarray]


def consecutive(k: int, plain: Rule) -> Rule:
    """A rule of the kind `health.healthy` may take: impact only after k consecutive bad buckets.

    It reads k - 1 buckets before lo (as the KPI window is read), and a verdict depends on the
    buckets up to k - 1 either side, so it may change when later buckets arrive.
    """

    def healthy(series: Series, limits: health.Thresholds, lo: int = 0, hi: int | None = None) -> np.ndarray:
        hi = len(series) if hi is None else hi
        first = max(0, lo - (k - 1))
        bad = ~plain(series, limits, first, hi)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], bad.astype(np.int8), [0]))))
        ok = np.ones(bad.size, bool)
        for a, b in zip(edges[::2], edges[1::2], strict=True):
            if b - a >= k:
                ok[a:b] = False
        return ok[lo - first :]

    return healthy


def second_lines(s: int, mode: str | None, deltas: list[tuple[int, str]]) -> str:
    """The lines the recorder writes for second s: a tick, its buckets (none if stalled), late deltas."""
    lines: list[dict[str, Any]] = [{"type": "tick", "t": T0 + s, "dt": 1.0, "users": 30}]
    if mode != "stall":
        for base in (CATALOG, PURCHASE):
            spec = {**base, **MODES.get(mode or "", {}).get(base["name"], {})}
            lines.append(bucket(T0 + s, spec).to_line())
    lines.extend(bucket(T0 + at, DELTAS[kind]).to_line() for at, kind in deltas)
    return "".join(json.dumps(line) + "\n" for line in lines)


def baseline_buckets(series: Series) -> int:
    """Buckets of the baseline (they come before the observed ones in `score_scenario`'s HealthTrack)."""
    lo = int(np.searchsorted(series.t + series.dt, PHASES.fault_start_t + 1e-9, side="right"))
    return lo - min(lo, int(np.searchsorted(series.t, PHASES.baseline_start_t - 1e-9, side="left")))


def grow_and_compare(
    tmp: Path, modes: dict[int, str], deltas: list[tuple[int, int, str]], settings_: ScoringSettings
) -> None:
    """Write the timeline a second at a time; after each, the three answers must agree."""
    path = tmp / "timeline.jsonl"
    path.write_text(json.dumps(HEADER) + "\n")
    live = TimelineFile(path)
    watch = RecoveryWatch(PHASES, settings_)
    late: dict[int, list[tuple[int, str]]] = {}
    for when, back, kind in deltas:
        late.setdefault(when, []).append((max(0, when - back), kind))
    for s in range(SECONDS):
        with path.open("a") as fh:
            fh.write(second_lines(s, modes.get(s), late.get(s, [])))
        live.update()
        series = live.series()
        end_t = T0 + s + 1.0
        scored = score_scenario(series, dataclasses.replace(PHASES, end_t=end_t), settings_)
        want = scored.recovered_t
        assert RecoveryWatch(PHASES, settings_).recovered(series, end_t) == want, f"fresh watch, second {s}"
        assert watch.recovered(series, end_t) == want, f"kept watch, second {s}"
        observed = scored.healthy.healthy[baseline_buckets(series) :]
        np.testing.assert_array_equal(watch.unhealthy, np.flatnonzero(~observed), f"verdicts, second {s}")
        impacted = np.flatnonzero(health.impact(~observed, settings_.policy.impact_buckets))
        np.testing.assert_array_equal(watch.impacted, impacted, f"impacts, second {s}")


class TestGrowingTimeline:
    @settings(max_examples=15, deadline=None)
    @given(
        modes=st.dictionaries(
            st.integers(0, SECONDS - 1), st.sampled_from(["fail", "slow", "no_kpi", "stall"]), max_size=30
        ),
        deltas=st.lists(
            st.tuples(st.integers(0, SECONDS - 1), st.integers(1, 50), st.sampled_from(sorted(DELTAS))),
            max_size=20,
        ),
        stability_s=st.sampled_from([0.0, 3.0, 10.0]),
        kpi_window_s=st.sampled_from([5.0, 30.0]),
        k=st.sampled_from([1, 3, 12]),
    )
    @example(  # a late failure 40 s back: past the buckets a check judges for context
        modes={s: "fail" for s in range(31, 36)},
        deltas=[(70, 40, "fail")],
        stability_s=3.0,
        kpi_window_s=5.0,
        k=1,
    )
    @example(  # a late report for the baseline: thresholds resolved again, every verdict with them
        modes={}, deltas=[(60, 50, "slow"), (61, 52, "slow")], stability_s=10.0, kpi_window_s=5.0, k=1
    )
    @example(  # a run of bad buckets long enough only once later seconds arrive
        modes={s: "fail" for s in range(40, 54)}, deltas=[], stability_s=0.0, kpi_window_s=30.0, k=12
    )
    def test_the_kept_watch_agrees_with_score_scenario_at_every_second(
        self,
        modes: dict[int, str],
        deltas: list[tuple[int, int, str]],
        stability_s: float,
        kpi_window_s: float,
        k: int,
    ) -> None:
        """Impact, recovery and late deltas anywhere (baseline too), under the rule as it is and
        under rules of k consecutive bad buckets: the same recovery point every second."""
        settings_ = ScoringSettings(policy=HealthPolicy(kpi_window_s=kpi_window_s), stability_s=stability_s)
        with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
            if k > 1:
                mp.setattr(health, "healthy", consecutive(k, health.healthy))
            grow_and_compare(Path(tmp), modes, deltas, settings_)


class TestCost:
    def test_a_check_judges_only_the_last_buckets_however_long_the_run(self, tmp_path: Path) -> None:
        """After the first check of a long run, a check judges the new second and the context around it."""
        path = tmp_path / "timeline.jsonl"
        fault = {s: "fail" for s in range(31, 40)}
        path.write_text(
            json.dumps(HEADER) + "\n" + "".join(second_lines(s, fault.get(s), []) for s in range(600))
        )
        live = TimelineFile(path)
        live.update()
        watch = RecoveryWatch(dataclasses.replace(PHASES, end_t=T0 + 620), ScoringSettings())
        assert watch.recovered(live.series(), T0 + 600.0) == T0 + 40.0
        assert watch.rejudged == 600 - 30
        for s in range(600, 610):
            with path.open("a") as fh:
                fh.write(second_lines(s, None, [(s - 20, "heal")] if s == 605 else []))
            live.update()
            assert watch.recovered(live.series(), T0 + s + 1.0) == T0 + 40.0
            assert watch.rejudged <= 3 * RecoveryWatch.CONTEXT_BUCKETS + 21

"""What the HTML report draws: a scenario's timeline cut to a few hundred points, its windows and events.

A day of 1 s buckets is 86,400 points per line, more than a page can draw or a reader can see, so
whole buckets are merged into display bins of `k` buckets: counts are summed and latency
histograms are merged before the percentiles are taken, so a display bin's p99 is the exact p99 of
the requests in it (never an average of per-bucket percentiles). Only what is drawn is downsampled;
the numbers in the report's cards come from result.json unchanged.

Pure: values in (a scoring Series, phases, markers, control-plane records), arrays and plain
dicts out. Called by harness.report.html.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harness.phases import Marker, Window
from harness.scoring import health
from harness.timeline import LatencySeries, Series
from harness.timeline.histogram import mapping_for
from harness.timeline.reader import QUANTILES

MAX_POINTS = 1500
"""Points per drawn line: about one per pixel of a wide screen; more would be invisible."""
_DENSE_CELLS = 1 << 22
"""Display bins are merged through a dense (bin x key) table of at most this many cells at a time
(32 MB of float64); bins beyond it are done in slices."""


@dataclass(frozen=True, eq=False)
class Display:
    """Per display bin: its start (seconds from the scenario's origin), width and what is drawn."""

    t_s: np.ndarray
    width_s: np.ndarray
    requests_per_s: np.ndarray
    kpi_per_s: np.ndarray
    error_rate: np.ndarray
    """NaN where nothing completed."""
    latency_ms: dict[str, np.ndarray]
    """Corrected latency (what users on schedule waited), p50/p95/p99 of the merged bins; NaN when empty."""
    latency_actual_ms: dict[str, np.ndarray]
    """Latency as Locust measures it (send to response)."""
    unhealthy: np.ndarray
    """Fraction of the bin's observed buckets judged unhealthy; NaN outside the observation."""
    buckets_per_point: int
    bucket_s: float

    def __len__(self) -> int:
        return int(self.t_s.size)


def bins_for(n: int, max_points: int = MAX_POINTS) -> int:
    """Buckets per display bin: the fewest whole buckets that keep n buckets within max_points."""
    return max(1, math.ceil(n / max(1, max_points)))


def merged_percentiles(latency: LatencySeries, n: int, k: int) -> dict[str, np.ndarray]:
    """p50/p95/p99 per display bin of k buckets (the last may be shorter), from merged histogram bins.

    Same ranks and values as `LatencySeries.percentiles(lo, hi)` over each bin's buckets: nearest rank
    max(1, ceil(q·total)), the zero bin first, then bins by key.
    """
    nbins = -(-n // k) if n else 0
    out = {label: np.full(nbins, np.nan) for label in QUANTILES}
    if nbins == 0:
        return out
    zero = np.add.reduceat(latency.zero, np.arange(0, n, k)).astype(np.int64)
    span = latency.key_max - latency.key_min + 1
    step = max(1, _DENSE_CELLS // span)
    mapping = mapping_for(latency.relative_accuracy)
    for first in range(0, nbins, step):
        last = min(nbins, first + step)
        table = np.zeros((last - first) * span)
        for block in latency.blocks:
            a, b = block.segment(first * k, last * k)
            if b <= a:
                continue
            r0, r1 = np.searchsorted(block.rows, (first * k, last * k))
            lengths = np.diff(block.starts[r0 : r1 + 1])
            entry_bin = np.repeat(block.rows[r0:r1] // k - first, lengths)
            keys = block.keys[a:b].astype(np.int64) + (block.key_base - latency.key_min)
            table += np.bincount(entry_bin * span + keys, weights=block.counts[a:b], minlength=table.size)
        cum = np.cumsum(table.reshape(last - first, span), axis=1)
        z = zero[first:last]
        total = z + cum[:, -1].astype(np.int64)
        for label, q in QUANTILES.items():
            rank = np.maximum(1, np.ceil(q * total - 1e-9)).astype(np.int64)
            values = np.where(total > 0, 0.0, np.nan)
            from_bins = (total > 0) & (rank > z)
            if from_bins.any():
                index = np.argmax(cum[from_bins] >= (rank - z)[from_bins, None], axis=1)
                values[from_bins] = [mapping.value(int(i) + latency.key_min) for i in index]
            out[label][first:last] = values
    return out


def display_series(
    series: Series,
    origin_t: float,
    max_points: int = MAX_POINTS,
    thresholds: Mapping[str, Any] | None = None,
    observed: tuple[float, float] | None = None,
) -> Display:
    """The series merged into at most max_points display bins, times relative to origin_t.

    thresholds (result.json's metrics["thresholds"]) and observed (fault start, end: Unix seconds)
    shade the unhealthy buckets as scoring judged them; the rounded thresholds can differ from
    scoring's only for a bucket exactly on a limit.
    """
    n = len(series)
    k = bins_for(n, max_points)
    starts = np.arange(0, n, k)
    if n == 0:
        empty = np.zeros(0)
        return Display(empty, empty, empty, empty, empty, {}, {}, empty, k, series.bucket_s)

    def summed(values: np.ndarray) -> np.ndarray:
        return np.add.reduceat(values, starts)

    width = summed(series.dt)
    requests = summed(series.requests)
    failures = summed(series.failures)
    error_rate = np.full(starts.size, np.nan)
    np.divide(failures, requests, out=error_rate, where=requests > 0)
    if k == 1:
        latency = {"p50": series.latency_corrected.p50_ms, "p95": series.latency_corrected.p95_ms,
                   "p99": series.latency_corrected.p99_ms}  # fmt: skip
        actual = {"p50": series.latency.p50_ms, "p95": series.latency.p95_ms, "p99": series.latency.p99_ms}
    else:
        latency = merged_percentiles(series.latency_corrected, n, k)
        actual = merged_percentiles(series.latency, n, k)
    return Display(
        t_s=series.t[starts] - origin_t,
        width_s=width,
        requests_per_s=requests / width,
        kpi_per_s=summed(series.kpi) / width,
        error_rate=error_rate,
        latency_ms={label: np.asarray(v, float) for label, v in latency.items()},
        latency_actual_ms={label: np.asarray(v, float) for label, v in actual.items()},
        unhealthy=_unhealthy(series, starts, thresholds, observed),
        buckets_per_point=k,
        bucket_s=series.bucket_s,
    )


def _unhealthy(
    series: Series,
    starts: np.ndarray,
    thresholds: Mapping[str, Any] | None,
    observed: tuple[float, float] | None,
) -> np.ndarray:
    """Per display bin: the share of its observed buckets that are unhealthy (NaN: none observed)."""
    out = np.full(starts.size, np.nan)
    if not thresholds or observed is None:
        return out
    judged = health.observed_health(series, dict(thresholds), observed[0], observed[1])
    if judged is None:
        return out
    inside, bad = judged
    count = np.add.reduceat(inside.astype(np.int64), starts)
    hurt = np.add.reduceat((bad & inside).astype(np.int64), starts)
    np.divide(hurt, count, out=out, where=count > 0)
    return out


# --- windows and events ------------------------------------------------------------------
@dataclass(frozen=True)
class Band:
    """A shaded stretch of the time axis (seconds from the origin)."""

    kind: str
    """warmup, baseline, fault or recovery."""
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Mark:
    """Something that happened at an instant (and maybe lasted): a vertical line on every chart."""

    kind: str
    """fault (a method action), probe (a method probe), rollback, recovery, phase (a recovery phase);
    control-plane kinds too."""
    t_s: float
    label: str
    end_s: float | None = None
    status: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def bands(
    phases: Mapping[str, float] | None,
    recovery_time_s: float | None,
    origin_t: float,
    markers: Sequence[Mapping[str, Any]] = (),
) -> list[Band]:
    """Warm-up, baseline, fault and recovery windows as scoring places them.

    The fault window runs to the recovery point (fault start + recovery_time_s) or, without
    recovery, to the end. Without phases (a scenario scoring could not place), the phase markers
    alone give what they can: the warm-up and the baseline up to the experiment.
    """
    phase_t = _phase_times(markers)
    out: list[Band] = []
    warmup = phase_t.get(Marker.WARMUP)
    baseline = phases["baseline_start_t"] if phases else phase_t.get(Marker.BASELINE)
    if warmup is not None and baseline is not None and baseline > warmup:
        out.append(Band(Marker.WARMUP, warmup - origin_t, baseline - origin_t))
    if not phases:
        end = phase_t.get(Marker.EXPERIMENT, phase_t.get(Marker.STOPPED))
        if baseline is not None and end is not None and end > baseline:
            out.append(Band(Window.BASELINE, baseline - origin_t, end - origin_t))
        return out
    fault_start, end = phases["fault_start_t"], phases["end_t"]
    out.append(Band(Window.BASELINE, phases["baseline_start_t"] - origin_t, fault_start - origin_t))
    recovered = None if recovery_time_s is None else fault_start + recovery_time_s
    fault_end = min(recovered, end) if recovered is not None else end
    if fault_end > fault_start:
        out.append(Band(Window.FAULT, fault_start - origin_t, fault_end - origin_t))
    if recovered is not None and end > recovered:
        out.append(Band(Window.RECOVERY, recovered - origin_t, end - origin_t))
    return out


def _phase_times(markers: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """First instant of each phase marker."""
    out: dict[str, float] = {}
    for m in markers:
        if m.get("kind") == "phase" and isinstance(m.get("t"), int | float) and m.get("phase"):
            out.setdefault(str(m["phase"]), float(m["t"]))
    return out


def activity_marks(markers: Sequence[Mapping[str, Any]], origin_t: float) -> list[Mark]:
    """A mark per Chaos Toolkit activity of the method (faults, probes) and of the rollbacks.

    Starts are paired with their ends by name and section, in order; an activity that never ended
    (the run was cut short) has no end.
    """
    out: list[Mark] = []
    open_: dict[tuple[str, str], list[int]] = {}
    for m in sorted((m for m in markers if isinstance(m.get("t"), int | float)), key=lambda m: m["t"]):
        section = m.get("section")
        if section not in ("method", "rollbacks"):
            continue
        key = (str(m.get("name")), str(section))
        if m.get("kind") == "activity_start":
            kind = "rollback" if section == "rollbacks" else "fault" if m.get("type") == "action" else "probe"
            open_.setdefault(key, []).append(len(out))
            out.append(Mark(kind, float(m["t"]) - origin_t, str(m.get("name"))))
        elif m.get("kind") == "activity_end" and open_.get(key):
            i = open_[key].pop(0)
            mark = out[i]
            out[i] = Mark(mark.kind, mark.t_s, mark.label, float(m["t"]) - origin_t, m.get("status"))
    return out


def recovery_mark(
    phases: Mapping[str, float] | None, recovery_time_s: float | None, origin_t: float
) -> Mark | None:
    """The recovery point: fault start + recovery_time_s; None when the scenario did not recover."""
    if not phases or recovery_time_s is None:
        return None
    return Mark("recovery", phases["fault_start_t"] + recovery_time_s - origin_t,
                f"recovered after {recovery_time_s:g} s")  # fmt: skip


STAGE_LABELS = {
    "users_affected": "users affected",
    "detected": "detected",
    "rerouted": "rerouted",
    "capacity_restored": "capacity back",
    "steady": "steady",
}
"""Recovery phases drawn as lines, with their words; the fault and the recovery point have their own marks."""


def stage_marks(recovery_phases: Sequence[Mapping[str, Any]] | None, origin_t: float) -> list[Mark]:
    """A mark per recovery phase that was seen (result.json's `recovery_phases`)."""
    out = []
    for p in recovery_phases or ():
        label, t = STAGE_LABELS.get(str(p.get("name"))), p.get("t")
        if label is None or not isinstance(t, int | float):
            continue
        out.append(Mark("phase", float(t) - origin_t, label, status=str(p.get("name"))))
    return out


# --- control plane -------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ControlPlaneDisplay:
    """API-server requests per display bin, and the control plane's events as marks."""

    t_s: np.ndarray
    requests: np.ndarray
    errors: np.ndarray
    p50_ms: np.ndarray
    p99_ms: np.ndarray
    """Nearest-rank percentiles of the bin's API latencies; NaN for a bin without requests."""
    marks: list[Mark]
    bin_s: float
    skipped: int
    """Records without a numeric t or a kind, not drawn."""


MAX_MARKS = 400
"""Control-plane marks beyond this many are dropped (and counted): a page of lines says nothing."""


def controlplane_display(
    records: Sequence[Mapping[str, Any]], origin_t: float, max_points: int = MAX_POINTS
) -> ControlPlaneDisplay:
    """API latency p50/p99 and errors per display bin (1 s, wider for long runs), and event marks.

    Marks: a health endpoint failing (consecutive failures of one endpoint are one mark spanning
    them), a node becoming not ready (and ready again), pod events.
    """
    good = [r for r in records if isinstance(r.get("t"), int | float) and isinstance(r.get("kind"), str)]
    skipped = len(records) - len(good)
    api = [r for r in good if r["kind"] == "api"]
    times = np.array([float(r["t"]) for r in api]) if api else np.zeros(0)
    latency = np.array([_number(r.get("latency_ms")) for r in api]) if api else np.zeros(0)
    failed = np.array([r.get("ok") is not True for r in api], bool) if api else np.zeros(0, bool)
    t_first = min((float(r["t"]) for r in good), default=origin_t)
    t_last = max((float(r["t"]) for r in good), default=origin_t)
    bin_s = float(max(1, math.ceil((t_last - t_first + 1.0) / max_points)))
    base = t_first  # bins start with the first record, so none is a sliver
    nbins = int((t_last - base) // bin_s) + 1 if good else 0
    which = ((times - base) // bin_s).astype(np.int64)
    requests = np.bincount(which, minlength=nbins)[:nbins] if nbins else np.zeros(0, np.int64)
    errors = np.bincount(which[failed], minlength=nbins)[:nbins] if nbins else np.zeros(0, np.int64)
    p50, p99 = np.full(nbins, np.nan), np.full(nbins, np.nan)
    has = ~np.isnan(latency)
    if has.any():
        order = np.lexsort((latency[has], which[has]))
        w, v = which[has][order], latency[has][order]
        first = np.searchsorted(w, np.arange(nbins), side="left")
        count = np.searchsorted(w, np.arange(nbins), side="right") - first
        for out, q in ((p50, 0.50), (p99, 0.99)):
            rank = np.maximum(1, np.ceil(q * count - 1e-9)).astype(np.int64)
            ok = count > 0
            out[ok] = v[first[ok] + rank[ok] - 1]
    marks = _controlplane_marks(good, origin_t)
    return ControlPlaneDisplay(
        t_s=base + np.arange(nbins) * bin_s - origin_t,
        requests=requests,
        errors=errors,
        p50_ms=p50,
        p99_ms=p99,
        marks=marks[:MAX_MARKS],
        bin_s=bin_s,
        skipped=skipped + max(0, len(marks) - MAX_MARKS),
    )


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else np.nan


def _controlplane_marks(records: Sequence[Mapping[str, Any]], origin_t: float) -> list[Mark]:
    out: list[Mark] = []
    failing: dict[str, tuple[float, float, set[str]]] = {}
    ready: dict[str, bool] = {}

    def close(endpoint: str) -> None:
        start, end, checks = failing.pop(endpoint)
        detail = f" ({', '.join(sorted(checks))})" if checks else ""
        out.append(Mark("health", start - origin_t, f"{endpoint} failing{detail}", end - origin_t))

    for r in sorted(records, key=lambda r: r["t"]):
        t, kind = float(r["t"]), r["kind"]
        if kind == "health":
            endpoint = str(r.get("endpoint", "health"))
            if r.get("ok") is False:
                start, _, checks = failing.get(endpoint, (t, t, set()))
                failing[endpoint] = (start, t, checks | {str(c) for c in r.get("failed_checks") or ()})
            elif endpoint in failing:
                close(endpoint)
        elif kind == "node":
            name, now = str(r.get("name")), bool(r.get("ready"))
            if ready.get(name, True) != now:
                out.append(Mark("node", t - origin_t, f"node {name} {'ready' if now else 'not ready'}",
                                status="ready" if now else "not_ready"))  # fmt: skip
            ready[name] = now
        elif kind == "pod":
            where = f" on {r['node']}" if r.get("node") else ""
            out.append(Mark("pod", t - origin_t, f"pod {r.get('name')} {r.get('event')}{where}",
                            status=str(r.get("event"))))  # fmt: skip
    for endpoint in list(failing):
        close(endpoint)
    return sorted(out, key=lambda m: m.t_s)


# --- JSON for the page ---------------------------------------------------------------------
def plain(values: np.ndarray, digits: int) -> list[float | None]:
    """Floats rounded for the page, NaN as null (uPlot draws a gap)."""
    rounded = np.round(np.asarray(values, float), digits)
    return [None if math.isnan(v) else v for v in rounded.tolist()]

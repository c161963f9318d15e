"""Timelines with known answers, written the way the recorder writes them (header, tick and bucket lines).

A scenario here is two request names, 1 s buckets from T0: `catalog` (20 requests of 20 ms a
second) and `purchase` (10 requests of 50 ms and 2 KPI events a second). Tests change given
seconds (`overrides`) to make impact: failures, slow corrected latency, no KPI, a stall.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.scoring import Phases
from harness.timeline.buckets import SCHEMA, Bucket
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY, Histogram

T0 = 1_795_750_000.0
HEADER = {"type": "header", "schema": SCHEMA, "bucket_s": 1.0, "relative_accuracy": DEFAULT_RELATIVE_ACCURACY}

CATALOG = {"name": "catalog", "method": "GET", "requests": 20, "failures": 0, "kpi": 0, "latency_ms": 20.0}
PURCHASE = {"name": "purchase", "method": "POST", "requests": 10, "failures": 0, "kpi": 2, "latency_ms": 50.0}


def bucket(t: float, spec: Mapping[str, Any], dt: float = 1.0) -> Bucket:
    """One bucket line: `requests` of `latency_ms` (corrected: `corrected_ms`, default the same), and the
    load generator's `gen_late` and `gen_lag_max_ms` (default 0)."""
    requests, zero = spec["requests"], spec.get("zero", 0)
    actual = Histogram()
    corrected = Histogram()
    if requests - zero > 0:
        actual.add(spec["latency_ms"], requests - zero)
        corrected.add(spec.get("corrected_ms", spec["latency_ms"]), requests - zero)
    actual.zero = corrected.zero = zero
    failures = spec.get("failures", 0)
    return Bucket(
        t=t,
        dt=dt,
        name=spec["name"],
        method=spec.get("method", "GET"),
        requests=requests,
        failures=failures,
        failures_by_kind={"http_5xx": failures} if failures else {},
        kpi=spec.get("kpi", 0),
        latency=actual,
        latency_corrected=corrected,
        latency_max_ms=spec["latency_ms"],
        latency_corrected_max_ms=spec.get("corrected_ms", spec["latency_ms"]),
        latency_sum_ms=spec["latency_ms"] * (requests - zero),
        gen_late=spec.get("gen_late", 0),
        gen_lag_max_ms=spec.get("gen_lag_max_ms", 0.0),
    )


def write_lines(path: Path, lines: Iterable[Mapping[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
    return path


def scenario(
    path: Path,
    seconds: int = 120,
    overrides: Mapping[int, Mapping[str, Mapping[str, Any]]] | None = None,
    stalled: Iterable[int] = (),
    missing: Iterable[int] = (),
) -> Path:
    """Write the two-name scenario for `seconds` seconds from T0.

    overrides: second → name → fields replacing that name's defaults.
    stalled: seconds with a tick line and no bucket line (nothing completed).
    missing: seconds with no line at all.
    """
    overrides = overrides or {}
    stalled, missing = set(stalled), set(missing)
    lines: list[dict[str, Any]] = [HEADER]
    for s in range(seconds):
        if s in missing:
            continue
        t = T0 + s
        lines.append({"type": "tick", "t": t, "dt": 1.0, "users": 30})
        if s in stalled:
            continue
        for base in (CATALOG, PURCHASE):
            spec = {**base, **overrides.get(s, {}).get(base["name"], {})}
            lines.append(bucket(t, spec).to_line())
    lines.append({"type": "end", "t": T0 + seconds + 0.5})
    return write_lines(path, lines)


def bad(seconds: Iterable[int], **catalog: Any) -> dict[int, dict[str, dict[str, Any]]]:
    """Overrides making the given seconds fail: half of catalog's requests (unless told otherwise)."""
    fields = catalog or {"failures": 10}
    return {s: {"catalog": fields} for s in seconds}


def phases(
    baseline_s: float = 10.0, fault_s: float = 60.5, fault_end_s: float = 70.2, end_s: float = 120.0
) -> Phases:
    """Phases at offsets from T0: baseline from 10 s, fault 60.5 s to 70.2 s, end at 120 s."""
    return Phases(
        baseline_start_t=T0 + baseline_s,
        fault_start_t=T0 + fault_s,
        fault_end_t=T0 + fault_end_s,
        end_t=T0 + end_s,
    )

"""Replays a known sequence of Locust request events into the recorder, in a process of its own.

The recorder imports Locust, and importing Locust monkey-patches the interpreter with gevent, so
tests/load/test_recorder.py runs this file as a child process:

    python tests/load/listener_replay.py SCENARIO SEED REQUESTS BUCKET_S DIR

and it writes DIR/timeline.jsonl (the recorder's file) and DIR/replay.json: the lines a plain
per-request implementation writes for the same events, and Locust's own RequestStats totals.
Scenarios: `once` (all events, then the final fold), `ticks` (events arrive out of order,
ticked every 500 requests, response times in whole 1/8 ms so that sums are exact in any
grouping), `no-start-time` (one request without start_time).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
from locust.exception import CatchResponseError
from locust.stats import RequestStats

from harness.load.recorder import Recorder, classify
from harness.timeline.buckets import Bucket
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY, Histogram

NAMES = [("/v1/catalog", "GET"), ("/v1/subscriptions", "POST"), ("/v1/catalog", "HEAD"), ("/v1/me", "GET")]


def request_events(n: int, seed: int, t0: float) -> list[dict[str, Any]]:
    """Locust request events as FastHttpSession fires them: successes, every kind of failure, lags."""
    rng = np.random.default_rng(seed)
    failures = [
        (None, None),
        (None, None),
        (None, None),
        (CatchResponseError("no subscription id"), SimpleNamespace(status_code=200)),
        (TimeoutError("timed out"), None),
        (ConnectionRefusedError("refused"), None),
        (Exception("503 Server Error"), SimpleNamespace(status_code=503)),
        (Exception("404 Not Found"), SimpleNamespace(status_code=404)),
    ]
    events = []
    for i in range(n):
        name, method = NAMES[int(rng.integers(len(NAMES)))]
        exception, response = failures[int(rng.integers(len(failures)))]
        context: dict[str, Any] = {}
        if i % 3:  # paced users say how late they were; plain ones send an empty context
            context = {"lag_s": float(rng.exponential(0.02)), "gen_lag_s": float(rng.exponential(0.01))}
            if method == "POST" and exception is None:
                context["kpi"] = 1
        events.append(
            {
                "request_type": method,
                "name": name,
                "context": context,
                "response": response or SimpleNamespace(status_code=200),
                "exception": exception,
                "start_time": t0 + float(rng.uniform(0, 6)),
                "url": f"http://127.0.0.1{name}",
                "response_length": 2,
                "response_time": float(rng.lognormal(1.0, 1.2)) if i % 50 else 0.0,
            }
        )
    return events


def reference_buckets(events: list[dict[str, Any]], bucket_s: float, gen_late_ms: float = 50.0) -> list[dict]:
    """The plain way: one Bucket per (bucket, name, method), updated request by request."""
    buckets: dict[tuple[int, str, str], Bucket] = {}
    for e in events:
        ctx = e["context"]
        lag_s, gen_s = ctx.get("lag_s", 0.0), ctx.get("gen_lag_s", 0.0)
        t = e["start_time"] - lag_s - gen_s
        key = (math.floor(t / bucket_s), e["name"], e["request_type"])
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = Bucket(
                t=round(key[0] * bucket_s, 6), dt=bucket_s, name=e["name"], method=e["request_type"],
                latency=Histogram(DEFAULT_RELATIVE_ACCURACY), latency_corrected=Histogram(DEFAULT_RELATIVE_ACCURACY),
            )  # fmt: skip
        ms = e["response_time"] or 0.0
        corrected = ms + max(lag_s * 1000.0, 0.0)
        b.requests += 1
        if e["exception"] is not None:
            b.failures += 1
            kind = classify(e["exception"], e["response"]).value
            b.failures_by_kind[kind] = b.failures_by_kind.get(kind, 0) + 1
        b.kpi += ctx.get("kpi", 0)
        b.latency_sum_ms += ms
        b.latency_max_ms = max(b.latency_max_ms, ms)
        b.latency_corrected_max_ms = max(b.latency_corrected_max_ms, corrected)
        b.gen_late += gen_s * 1000.0 > gen_late_ms
        b.gen_lag_max_ms = max(b.gen_lag_max_ms, gen_s * 1000.0)
        b.latency.add(ms)
        b.latency_corrected.add(corrected)
    return [buckets[k].to_line() for k in sorted(buckets)]


def replay(scenario: str, seed: int, n: int, bucket_s: float, out: Path) -> None:
    # Recent times: the recorder's last tick is at the real time and writes a tick line per
    # second since its first one.
    t0 = float(math.floor(time.time())) - 30.0
    environment = SimpleNamespace(
        runner=SimpleNamespace(user_count=4), host="http://127.0.0.1", parsed_options=None
    )
    rec = Recorder(environment, str(out / "timeline.jsonl"), bucket_s)
    stats = RequestStats()
    events = request_events(n, seed, t0)
    order = list(range(n))
    if scenario == "ticks":
        for e in events:
            e["response_time"] = round(e["response_time"] * 8) / 8
        order.sort(key=lambda i: events[i]["start_time"] + 0.002 * (i % 700))
    elif scenario == "no-start-time":
        events = events[:1]
        events[0].update(start_time=None, response_time=1500.0, exception=None, context={})
        order = [0]
    for count, i in enumerate(order):
        e = events[i]
        rec.on_request(**e)
        stats.log_request(e["request_type"], e["name"], e["response_time"], e["response_length"])
        if e["exception"] is not None:
            stats.log_error(e["request_type"], e["name"], e["exception"])
        if scenario == "ticks" and count % 500 == 499:
            rec.tick(e["start_time"])
    rec.close()
    result = {
        "reference": reference_buckets(events, bucket_s) if scenario != "no-start-time" else [],
        "locust": [[s.name, s.method, s.num_requests, s.num_failures] for s in stats.entries.values()],
        "failure_kinds": sorted(
            {classify(e["exception"], e["response"]).value for e in events if e["exception"]}
        ),
    }
    (out / "replay.json").write_text(json.dumps(result))


if __name__ == "__main__":
    scenario, seed, n, bucket_s, out = sys.argv[1:6]
    replay(scenario, int(seed), int(n), float(bucket_s), Path(out))

"""Testbed fixtures: real etcd, HAProxy, node agents and replicas on 127.0.0.1, fast timings."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from harness.testbed import faults, profiles
from harness.testbed.groundtruth import Event, Record, read_events
from harness.testbed.state import TestbedState

FAST = profiles.Timings(
    heartbeat_s=0.25,
    node_grace_s=2.0,
    eviction_s=4.0,
    sync_s=0.1,
    readiness_period_s=0.2,
    readiness_failures=2,
    restart_backoff_s=0.3,
)
"""Kubernetes' timings scaled far down so that a whole fault cycle takes seconds."""


def make_profile(name: str, **overrides: object) -> profiles.Profile:
    return profiles.builtin(name, timings=FAST, **overrides)


def wait_for(condition: Callable[[], object], timeout_s: float, what: str, step_s: float = 0.1) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def serving(state: TestbedState) -> bool:
    return faults.endpoints(state.root) >= state.profile.replicas and answers(state)


def answers(state: TestbedState, path: str = "/readyz", timeout_s: float = 2.0) -> bool:
    try:
        return httpx.get(state.lb_url + path, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


def events_since(state: TestbedState, t: float, *kinds: Event) -> list[Record]:
    return [
        r
        for r in read_events(Path(state.dir) / "events.jsonl")
        if r.t >= t and (not kinds or r.event in kinds)
    ]


def probe_lb(state: TestbedState, seconds: float, timeout_s: float = 1.0) -> list[tuple[float, bool, float]]:
    """(t, ok, latency_s) for sequential requests through the load balancer for a while."""
    out = []
    end = time.monotonic() + seconds
    with httpx.Client(timeout=timeout_s) as client:
        while time.monotonic() < end:
            t0 = time.time()
            try:
                ok = client.get(state.lb_url + "/v1/catalog").status_code == 200
            except httpx.HTTPError:
                ok = False
            out.append((t0, ok, time.time() - t0))
    return out

"""Drives harness.load.users.ArrivalUser and VisitorSession without a network, in a process of its own.

Importing Locust monkey-patches the interpreter with gevent, so tests/load/test_arrivals.py runs
this file as a child process (`python tests/load/arrivals_child.py`) and reads the JSON it prints:
what each scenario observed.
"""

from __future__ import annotations

import importlib.util
import json
import random
from pathlib import Path
from typing import Any

import gevent
from gevent.event import Event
from locust.env import Environment

from harness.load import users
from harness.load.pacing import Schedule
from harness.load.stalls import LoopWatch
from harness.load.users import ArrivalUser, Lags, VisitorSession

users._watch = LoopWatch()  # no watcher greenlet needed: nothing here stalls the loop


class Visitors(ArrivalUser):
    host = "http://127.0.0.1:9"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def new_user() -> tuple[Visitors, FakeClock]:
    user = Visitors(Environment(user_classes=[Visitors]))
    clock = FakeClock()
    user.schedule = Schedule(0.2, clock=clock, rng=random.Random(0))
    clock.t += user.schedule.first_delay()
    return user, clock


def stuck_first_customer() -> dict[str, Any]:
    """Ten arrivals 0.2 s apart; the first one never gets an answer."""
    user, clock = new_user()
    stuck = Event()
    arrivals: list[tuple[float, Lags]] = []

    def visit(lags: Lags) -> None:
        arrivals.append((clock.t, lags))
        if len(arrivals) == 1:
            stuck.wait()

    delays = []
    for _ in range(10):
        user.arrive(visit)
        gevent.sleep(0)  # the visitor runs until it waits on the service
        delays.append(user.schedule.next_delay())
        clock.t += delays[-1]
    gevent.sleep(0)  # the finished ones leave the pool
    in_flight = len(user.visitors)
    stuck.set()
    user.visitors.join()
    return {
        "starts": [t for t, _ in arrivals],
        "lags": [lags for _, lags in arrivals],
        "delays": delays,
        "in_flight": in_flight,
    }


def stop_with_visitors_in_flight() -> dict[str, Any]:
    user, _ = new_user()
    stuck = Event()
    for _ in range(3):
        user.arrive(lambda _lags: stuck.wait())
    gevent.sleep(0)
    before = len(user.visitors)
    user.on_stop()
    return {"before": before, "after": len(user.visitors)}


class RecordingSession:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def request(self, method: str, url: str, **kwargs: Any) -> None:
        self.calls.append({"method": method, "url": url, **kwargs})


def interleaved_visitors() -> list[dict[str, Any]]:
    """Two customers on one session: a signs up, both get tokens, b's request carries a KPI."""
    shared = RecordingSession()
    a = VisitorSession(shared, {"lag_s": 0.0, "gen_lag_s": 0.01})
    b = VisitorSession(shared, {"lag_s": 0.5, "gen_lag_s": 0.0})
    a.post("/v1/signup", json={}, name="signup")
    a.auth_header = "Bearer A"
    b.auth_header = "Bearer B"
    b.get("/v1/entitlements", name="entitlement", context={"kpi": 1}, headers={"X-Other": "1"})
    a.get("/v1/entitlements", name="entitlement")
    return [{"headers": c["headers"], "context": c["context"]} for c in shared.calls]


def new_customers_arrive_independently() -> bool:
    """The bundled journeys' NewCustomer: a stream of customers, not one customer's session."""
    path = Path(__file__).resolve().parents[2] / "loadtests" / "subscriptions.py"
    spec = importlib.util.spec_from_file_location("subscriptions", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return issubclass(module.NewCustomer, ArrivalUser)


if __name__ == "__main__":
    print(
        json.dumps(
            {
                "new_customer_arrives": new_customers_arrive_independently(),
                "stuck_first_customer": stuck_first_customer(),
                "stop": stop_with_visitors_in_flight(),
                "interleaved": interleaved_visitors(),
            }
        )
    )

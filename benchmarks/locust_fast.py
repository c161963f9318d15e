"""Benchmark locustfile: hammer one fixed fast endpoint, closed loop, no think time.

BENCH_RECORDER selects what listens to Locust's request event:
  none      nothing (Locust's own stats only)
  recorder  the harness timeline recorder (pass --timeline PATH), and the acknowledgement
            log's --acks option, so harness.load.process can run it as it runs a plan's
  naive     a straightforward per-request listener: one dict update and two histogram
            insertions per request, the design the recorder's batching replaces
"""

import math
import os
import time

from locust import FastHttpUser, events, task

from harness.load import acks, recorder
from harness.timeline.histogram import Histogram

MODE = os.environ.get("BENCH_RECORDER", "none")
if MODE == "recorder":
    recorder.register(events)
    acks.register(events)  # --acks, which harness.load.process always passes; nothing is acknowledged here
elif MODE == "naive":
    buckets: dict = {}

    @events.request.add_listener
    def _naive(request_type, name, response_time, context, exception, start_time=None, **_):
        lag = context.get("lag_s", 0.0) if context else 0.0
        t = (start_time or time.time()) - lag
        key = (math.floor(t), name, request_type)
        b = buckets.get(key)
        if b is None:
            b = buckets[key] = [0, 0, Histogram(), Histogram()]
        b[0] += 1
        b[1] += exception is not None
        b[2].add(response_time or 0.0)
        b[3].add((response_time or 0.0) + lag * 1000)


class Hammer(FastHttpUser):
    @task
    def get(self):
        self.client.get("/")

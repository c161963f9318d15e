"""Benchmark locustfile: hammer one fixed fast endpoint, closed loop, no think time.

BENCH_RECORDER selects what listens to Locust's request event:
  none      nothing (Locust's own stats only)
  recorder  the harness timeline recorder (pass --timeline PATH), and the acknowledgement
            log's --acks option, so harness.load.process can run it as it runs a plan's
  naive     a straightforward per-request listener: one dict update and two histogram
            insertions per request, the design the recorder's batching replaces

Optional, for the benchmarks that read them (every variant does the same work for them):
  BENCH_REQUESTS  quit once this many requests have finished (a run length in requests,
                  which a slowed-down process under valgrind reaches as surely as a fast one)
  BENCH_CPU_LOG   append "unix_time cpu_s requests" lines to this file every 0.5 s while the
                  test runs and once when it stops: this process's own CPU time
                  (getrusage), paired exactly with its own request count
  BENCH_TICKS_LOG with the recorder: write how many times its ticker ran here at quit; each
                  tick then runs inside functools.reduce, a C function nothing else here
                  calls, so callgrind's inclusive count of `functools_reduce` is what the
                  ticks cost in this very process
  BENCH_GC_LOG    write the garbage collector's collections per generation here at quit
  BENCH_IDLE      users send nothing (each sleeps): what Locust costs per wall-clock second
                  with no requests, to size the work that runs by the clock, not by requests
"""

import functools
import gc
import json
import math
import os
import resource
import time

import gevent
from locust import FastHttpUser, events, task

from harness.load import acks, recorder
from harness.timeline.histogram import Histogram

MODE = os.environ.get("BENCH_RECORDER", "none")
LIMIT = int(os.environ.get("BENCH_REQUESTS", "0") or 0)
CPU_LOG = os.environ.get("BENCH_CPU_LOG", "")
TICKS_LOG = os.environ.get("BENCH_TICKS_LOG", "")
GC_LOG = os.environ.get("BENCH_GC_LOG", "")
IDLE = os.environ.get("BENCH_IDLE", "") == "1"

if MODE == "recorder":
    recorder.register(events)
    acks.register(events)  # --acks, which harness.load.process always passes; nothing is acknowledged here
    if TICKS_LOG:
        ticks = [0]
        _tick = recorder.Recorder.tick

        def _counted_tick(self, now, final=False):
            ticks[0] += 1
            functools.reduce(lambda _acc, _x: _tick(self, now, final), (0,), None)

        recorder.Recorder.tick = _counted_tick

        @events.quit.add_listener
        def _write_ticks(**_):
            with open(TICKS_LOG, "w") as fh:
                fh.write(f"{ticks[0]}\n")

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


if CPU_LOG:

    def _cpu_line(environment) -> str:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        requests = environment.runner.stats.total.num_requests
        return f"{time.time():.3f} {usage.ru_utime + usage.ru_stime:.4f} {requests}\n"

    @events.test_start.add_listener
    def _sample_cpu(environment, **_):
        def loop():
            with open(CPU_LOG, "a") as fh:
                while True:
                    fh.write(_cpu_line(environment))
                    fh.flush()
                    gevent.sleep(0.5)

        environment.bench_cpu_sampler = gevent.spawn(loop)

    @events.test_stop.add_listener
    def _last_cpu(environment, **_):
        sampler = getattr(environment, "bench_cpu_sampler", None)
        if sampler is not None:
            sampler.kill(block=True)
        with open(CPU_LOG, "a") as fh:
            fh.write(_cpu_line(environment))


if GC_LOG:

    @events.quit.add_listener
    def _write_gc(**_):
        with open(GC_LOG, "w") as fh:
            json.dump([s["collections"] for s in gc.get_stats()], fh)


done = [0]


class Hammer(FastHttpUser):
    @task
    def get(self):
        if IDLE:
            gevent.sleep(1.0)
            return
        self.client.get("/")
        if LIMIT:
            done[0] += 1
            if done[0] == LIMIT:
                gevent.spawn(self.environment.runner.quit)

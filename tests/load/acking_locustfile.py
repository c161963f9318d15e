"""Users that acknowledge every answered request, for the acknowledgement-log tests.

Each successful GET / records one acknowledgement (`harness.load.acks`) with an id made of the
process id and a counter. `--tally DIR` makes every process that recorded acknowledgements
write `DIR/tally-<pid>.json` (how many it recorded) when it quits: what the master's log must
hold, counted where the acknowledgements were made.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, events, task

from harness.load import acks, recorder

recorder.register(events)
ACKS = acks.register(events)
_COUNTER = itertools.count(1)
_RECORDED = {"n": 0}


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument("--tally", type=str, default="", help="Write how many acks this process made here")


@events.quit.add_listener
def _write_tally(**_: Any) -> None:

    folder = _TALLY.get("dir")
    if folder and _RECORDED["n"]:
        Path(folder, f"tally-{os.getpid()}.json").write_text(json.dumps({"recorded": _RECORDED["n"]}))


_TALLY: dict[str, str] = {}


@events.test_start.add_listener
def _remember_tally(environment: Any, **_: Any) -> None:
    # A worker has the master's options only from the test's start.
    _TALLY["dir"] = getattr(environment.parsed_options, "tally", "") or ""


class Acker(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def get(self) -> None:
        with self.client.get("/", catch_response=True) as resp:
            if resp.status_code == 200:
                ACKS.record(
                    self.environment, subscription_id=f"{os.getpid()}-{next(_COUNTER)}", pid=os.getpid()
                )
                _RECORDED["n"] += 1

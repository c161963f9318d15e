"""Run folders for the report's tests, synthetic, built in milliseconds.

`build_run` writes what the engine writes (plan.json, per scenario trial scenario.json,
timeline.jsonl, markers.jsonl, journal.json, optionally controlplane.jsonl) with a known fault,
and scores it with the engine's own `assemble_result`, so result.json has the real shape. Secrets
are planted where a careless report would show them (SECRETS) and written unmasked, as older
versions of the harness wrote run folders: what reads them for the report must mask them.

`real_run` is the folder of the session's one real run on the local testbed (tests/conftest.py: a
replica kill under load, ~30 s).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from harness.engine import runner
from harness.plan.models import Plan
from harness.store import rundir
from harness.timeline.buckets import SCHEMA, Bucket
from harness.timeline.histogram import DEFAULT_RELATIVE_ACCURACY, Histogram
from tests.conftest import PLAN_VAR_SECRET, SharedRun

ROOT = Path(__file__).parents[2]
EXPERIMENT = ROOT / "tests/engine/experiments/replica-kill.yaml"
T0 = 1_795_750_000.0
SECRETS = {
    "journal_secret": "js-4f1c9e0b7d2a",
    "journal_config_token": "tok-8b3e5d1f0c9a",
    "activity_password": "pw-2c7a9e4b6d1f",
    "nested_config_key": "nk-5e0b3c8a2f7d",
    "plan_var_password": PLAN_VAR_SECRET,
    "target_token": "tt-1a2b3c4d5e6f",
    "controlplane_token": "ct-6f5e4d3c2b1a",
    "target_url_password": "tu-0c9b8a7f6e5d",
    "journal_url_password": "ju-7d6c5b4a3f2e",
}
"""Secret values planted in a synthetic run folder: under secret-looking keys and in URLs."""


@dataclass
class Spec:
    """One scenario of a synthetic run, and which of its files exist."""

    name: str
    trials: int = 1
    seconds: int = 120
    fault_s: tuple[float, float] = (60.4, 75.0)
    """Fault injected (method action starts) and rolled back, seconds from T0."""
    broken_s: tuple[int, int] = (61, 70)
    """Seconds whose requests fail (a third) and are slow."""
    files: set[str] = field(default_factory=lambda: {"timeline", "markers", "journal"})
    controlplane: bool = False
    names: Sequence[str] = ("catalog", "purchase")


def write_timeline(path: Path, spec: Spec, seed: int) -> None:
    """The recorder's lines: header, a tick and a bucket per name each second, random latencies."""
    rng = np.random.default_rng(seed)
    lines: list[dict[str, Any]] = [
        {"type": "header", "schema": SCHEMA, "bucket_s": 1.0, "relative_accuracy": DEFAULT_RELATIVE_ACCURACY,
         "started": T0, "host": "http://127.0.0.1:1", "pid": 1, "latency_unit": "ms"}
    ]  # fmt: skip
    for s in range(spec.seconds):
        t = T0 + s
        lines.append({"type": "tick", "t": t, "dt": 1.0, "users": 20})
        broken = spec.broken_s[0] <= s < spec.broken_s[1]
        for i, name in enumerate(spec.names):
            n = int(rng.integers(15, 40))
            latency = rng.lognormal(np.log(8.0 + 20 * i), 0.5, n) * (30.0 if broken else 1.0)
            latency[rng.random(n) < 0.03] = 0.0  # failed before sending: the zero bin
            corrected = latency + rng.exponential(2.0, n) * (latency > 0)
            actual, fixed = Histogram(), Histogram()
            actual.add_many(latency)
            fixed.add_many(corrected)
            failures = int(n // 3) if broken else 0
            lines.append(Bucket(t=t, dt=1.0, name=name, method="GET", requests=n, failures=failures,
                                failures_by_kind={"http_5xx": failures} if failures else {},
                                kpi=int(rng.integers(1, 4)) if name == "purchase" and not broken else 0,
                                latency=actual, latency_corrected=fixed, latency_max_ms=float(latency.max()),
                                latency_corrected_max_ms=float(corrected.max()),
                                latency_sum_ms=float(latency.sum())).to_line())  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def markers(spec: Spec) -> list[dict[str, Any]]:
    start, end = spec.fault_s
    rows = [
        {"t": T0, "kind": "phase", "phase": "warmup"},
        {"t": T0 + 5, "kind": "phase", "phase": "baseline"},
        {"t": T0 + start - 0.3, "kind": "phase", "phase": "experiment"},
        {"t": T0 + start - 0.2, "kind": "activity_start", "name": "answers", "type": "probe", "section": "steady_state_before"},
        {"t": T0 + start - 0.1, "kind": "activity_end", "name": "answers", "type": "probe", "section": "steady_state_before", "status": "succeeded"},
        {"t": T0 + start, "kind": "activity_start", "name": "kill-a-replica", "type": "action", "section": "method"},
        {"t": T0 + start + 0.1, "kind": "activity_end", "name": "kill-a-replica", "type": "action", "section": "method", "status": "succeeded"},
        {"t": T0 + end, "kind": "activity_start", "name": "wait-until-serving", "type": "action", "section": "rollbacks"},
        {"t": T0 + end + 0.5, "kind": "activity_end", "name": "wait-until-serving", "type": "action", "section": "rollbacks", "status": "succeeded"},
        {"t": T0 + end + 0.6, "kind": "phase", "phase": "observe"},
        {"t": T0 + spec.seconds - 1, "kind": "phase", "phase": "stopped"},
    ]  # fmt: skip
    return rows


def journal(spec: Spec) -> dict[str, Any]:
    """A Chaos Toolkit journal as chaoslib writes it, with secrets where they can hide."""
    start, end = spec.fault_s

    def iso(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(T0 + t)) + f".{int((t % 1) * 1e6):06d}+00:00"

    def probe(at: float) -> dict[str, Any]:
        return {"activity": {"type": "probe", "name": "answers", "tolerance": True,
                             "provider": {"type": "python", "module": "harness.chaos.activities.testbed",
                                          "func": "service_answers"}},
                "output": True, "start": iso(at), "end": iso(at + 0.05), "status": "succeeded",
                "duration": 0.05, "tolerance_met": True}  # fmt: skip

    return {
        "chaoslib-version": "1.45.1",
        "experiment": {
            "title": f"Kill a replica ({spec.name}) </script><script>alert(1)</script>",
            "description": "One replica dies; the load balancer routes around it.",
            "tags": ["testbed"],
            "configuration": {
                "node": "node-a1",
                "api_token": SECRETS["journal_config_token"],
                "nested": {"private_key": SECRETS["nested_config_key"]},
            },
            "secrets": {"k8s": {"token": SECRETS["journal_secret"]}},
            "steady-state-hypothesis": {"title": "The service answers", "probes": []},
        },
        "status": "completed",
        "deviated": False,
        "start": iso(start - 0.3),
        "end": iso(end + 0.5),
        "duration": end - start + 0.8,
        "steady_states": {
            "before": {"steady_state_met": True, "probes": [probe(start - 0.2)]},
            "after": {"steady_state_met": True, "probes": [probe(end - 0.1)]},
        },
        "run": [
            {
                "activity": {
                    "type": "action",
                    "name": "kill-a-replica",
                    "provider": {
                        "type": "python",
                        "module": "harness.chaos.activities.testbed",
                        "func": "kill_replica",
                        "arguments": {"password": SECRETS["activity_password"]},
                    },
                    "pauses": {"after": 5},
                },
                "output": {
                    "replica": "subs-1",
                    "db": f"postgresql://subs:{SECRETS['journal_url_password']}@db.internal/subs",
                },
                "start": iso(start),
                "end": iso(start + 0.1),
                "status": "succeeded",
                "duration": 0.1,
            }
        ],
        "rollbacks": [
            {
                "activity": {
                    "type": "action",
                    "name": "wait-until-serving",
                    "provider": {
                        "type": "python",
                        "module": "harness.chaos.activities.testbed",
                        "func": "wait_until_serving",
                        "arguments": {"timeout_s": 60},
                    },
                },
                "output": 3,
                "start": iso(end),
                "end": iso(end + 0.5),
                "status": "succeeded",
                "duration": 0.5,
            }
        ],
    }


def controlplane(spec: Spec) -> list[dict[str, Any]]:
    """Control-plane probe records: API calls each 0.25 s (failing during the fault), health, nodes, pods."""
    start, _ = spec.fault_s
    rows: list[dict[str, Any]] = []
    for i in range(spec.seconds * 4):
        t = T0 + i / 4
        failing = start <= t - T0 < start + 6
        rows.append({"t": t, "kind": "api", "verb": "list", "resource": "pods", "latency_ms": 5.0 + (i % 7),
                     "ok": not failing, "status": 503 if failing else 200, "error": None,
                     "token": SECRETS["controlplane_token"]})  # fmt: skip
    for s in range(spec.seconds):
        ok = not (start <= s < start + 4)
        rows.append({"t": T0 + s, "kind": "health", "endpoint": "readyz", "ok": ok, "latency_ms": 3.0,
                     "failed_checks": [] if ok else ["etcd"]})  # fmt: skip
        rows.append(
            {"t": T0 + s + 0.5, "kind": "node", "name": "node-a1", "ready": not (start <= s < start + 8)}
        )
    rows += [
        {"t": T0 + start + 1, "kind": "pod", "name": "subs-1", "event": "deleted", "node": "node-a1"},
        {"t": T0 + start + 3, "kind": "pod", "name": "subs-2", "event": "scheduled", "node": "node-b1"},
        {"t": T0 + start + 4, "kind": "deployment", "name": "subs", "available": 2, "desired": 3},
    ]
    return rows


def build_run(
    root: Path, specs: Sequence[Spec], status: str = "completed", unrun: Sequence[str] = ()
) -> tuple[Path, dict[str, Any]]:
    """A run folder with the given scenarios (and planned-but-unrun ones), scored by the engine."""
    run_dir = root / "20261127T000000Z-report-test-abcd"
    run_dir.mkdir(parents=True)
    plan = {
        "name": "report-test",
        "description": "Synthetic run for the report tests.",
        "target": {"kind": "testbed", "profile": "managed"},
        "load": {"locustfile": str(ROOT / "loadtests/subscriptions.py"), "users": 20},
        "windows": {"warmup_s": 5, "baseline_s": 50, "observe_s": 60, "stability_s": 5},
        "scenarios": [
            {"name": s.name, "experiment": str(EXPERIMENT), "trials": s.trials,
             "vars": {"db_password": SECRETS["plan_var_password"], "zone": "zone-a"}}
            for s in specs
        ] + [{"name": name, "experiment": str(EXPERIMENT)} for name in unrun],
        "gates": ["recovery_time_s < 30", "error_rate < 0.05"],
    }  # fmt: skip
    model = Plan.model_validate(plan)
    rundir.write_json(run_dir / rundir.PLAN, model.model_dump(mode="json"))
    for number, spec in enumerate(specs):
        for trial in range(1, spec.trials + 1):
            sdir = rundir.scenario_dir(run_dir, spec.name, trial)
            sdir.mkdir(parents=True)
            facts = {"name": spec.name, "experiment": str(EXPERIMENT), "trial": trial,
                     "status": "completed" if "journal" in spec.files else "interrupted",
                     "aborted_by": None, "deviated": False, "steady_state": {"before": True, "after": True},
                     "started": T0 - 0.5, "ended": T0 + spec.seconds, "healed": [], "error": None}  # fmt: skip
            rundir.write_json(sdir / runner.SCENARIO_FILE, facts)
            if "timeline" in spec.files:
                write_timeline(sdir / "timeline.jsonl", spec, seed=100 * number + trial)
            if "markers" in spec.files:
                rundir.write_text(
                    sdir / "markers.jsonl", "".join(json.dumps(m) + "\n" for m in markers(spec))
                )
            if "journal" in spec.files:
                rundir.write_json(sdir / "journal.json", journal(spec))
            rundir.write_json(sdir / "verify.json", {"acknowledged": 10, "missing": [], "data_loss": 0})
            if spec.controlplane:
                text = "".join(json.dumps(r) + "\n" for r in controlplane(spec)) + '{"t": 1, "kind": "ap'
                rundir.write_text(sdir / "controlplane.jsonl", text)
    head = {"schema": runner.SCHEMA, "run_id": run_dir.name,
            "plan": {"name": plan["name"], "description": plan["description"]},
            "target": {"kind": "testbed", "profile": "managed",
                       "url": f"http://admin:{SECRETS['target_url_password']}@127.0.0.1:18080",
                       "token": SECRETS["target_token"]},
            "environment": {"harness": "0.1.0", "python": "3.12.1"},
            "started": T0 - 1, "ended": T0 + 400, "status": status}  # fmt: skip
    result = runner.assemble_result(run_dir, model, head).to_json()
    rundir.write_json(run_dir / rundir.RESULT, {**result, "target": head["target"]})  # unmasked, as of old
    return run_dir, result


@pytest.fixture(scope="module")
def real_run(replica_kill_run: SharedRun) -> Path:
    """A real run on the testbed: one short replica kill under load (~30 s), its run folder (the
    session's shared run, tests/conftest.py; its plan has a secret variable, SECRETS["plan_var_password"])."""
    return replica_kill_run.engine.run_dir

"""Run one Chaos Toolkit experiment for the engine: main thread, rollbacks always, markers on.

chaoslib's `run_experiment` installs signal handlers, so it must run in the main thread;
its default rollback strategy skips rollbacks when a run fails or is interrupted, which
would leave a fault in place — the harness always asks for "always".

Signals while it runs: Ctrl-C (KeyboardInterrupt) and SIGTERM (InterruptExecution) make
chaoslib stop the method, run the rollbacks and return a journal with status
"interrupted"; `interrupt_for_abort` (from the abort watcher's thread) uses SIGUSR1,
which chaoslib treats as "stop now, but run the rollbacks".
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from chaoslib.experiment import run_experiment
from chaoslib.loader import load_experiment

from harness.errors import InputError

_running = threading.Event()


def load(path: Path) -> dict[str, Any]:
    try:
        return load_experiment(str(path))
    except Exception as exc:  # chaoslib raises several kinds for unreadable files
        raise InputError(f"{path}: cannot load the experiment: {exc}") from exc


def prepared(experiment: dict[str, Any], markers: Path, variables: dict[str, Any]) -> dict[str, Any]:
    """A copy of the experiment with the harness's markers control and the scenario's variables.

    chaoslib only keeps `--var` values for keys the experiment's configuration declares, so
    variables it does not declare (the testbed's folder, say) are declared here.
    """
    exp = copy.deepcopy(experiment)
    exp["configuration"] = {**variables, **(exp.get("configuration") or {})}
    control = {
        "name": "harness-markers",
        "provider": {
            "type": "python",
            "module": "harness.chaos.control",
            "arguments": {"path": str(markers)},
        },
    }
    exp["controls"] = [*exp.get("controls", []), control]
    return exp


def run(experiment: dict[str, Any], markers: Path, variables: dict[str, Any]) -> dict[str, Any]:
    """Run it and return the journal (never raises for the experiment's own failures)."""
    settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    logging.getLogger("chaostoolkit").setLevel(logging.WARNING)
    _running.set()
    try:
        return run_experiment(
            prepared(experiment, markers, variables),
            settings=settings,
            experiment_vars=(dict(variables), {}),  # (configuration vars, secret vars), as `chaos run --var`
        )
    finally:
        _running.clear()


def interrupt_for_abort() -> bool:
    """Stop the running experiment now, with rollbacks; False when no experiment is running."""
    if not _running.is_set():
        return False
    os.kill(os.getpid(), signal.SIGUSR1)
    return True


def redact(journal: dict[str, Any]) -> dict[str, Any]:
    """The journal without secrets or configuration values (it is written into reports)."""
    out = copy.deepcopy(journal)
    exp = out.get("experiment", {})
    for key in ("secrets",):
        exp.pop(key, None)
    if isinstance(exp.get("configuration"), dict):
        exp["configuration"] = {
            k: "<redacted>" if _secretish(k) else v for k, v in exp["configuration"].items()
        }
    return out


def _secretish(key: str) -> bool:
    key = key.lower()
    return any(word in key for word in ("secret", "token", "password", "key", "credential"))

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

import contextlib
import copy
import logging
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chaoslib.experiment import run_experiment

from harness.errors import InputError

_running = threading.Event()


def load(path: Path) -> dict[str, Any]:
    """An experiment file's content, read as `harness validate` reads it (harness.plan.loading):
    the same limits on size, nesting and aliases, a pipe refused at once, errors with file and
    line. chaoslib's own loader recurses without bound and would block on a named pipe."""
    from harness.plan import loading

    path = Path(path)
    if path.suffix not in (".yaml", ".yml", ".json"):
        raise InputError(f"{path}: expected a .yaml, .yml or .json file (chaoslib reads no other)")
    data = loading.read_data(path)
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a Chaos Toolkit experiment: a mapping")
    return data


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


LOG_FILE = "chaostoolkit.log"
"""chaoslib's own log lines, in the scenario folder beside its journal."""


def run(
    experiment: dict[str, Any], markers: Path, variables: dict[str, Any], log: Path | None = None
) -> dict[str, Any]:
    """Run it and return the journal (never raises for the experiment's own failures).

    chaoslib logs to the "chaostoolkit" logger, and with no handler set Python prints its warnings
    ("Rollbacks were explicitly requested to be played") on the console, in the middle of the
    harness's progress. They go to `log` instead (default: chaostoolkit.log beside the markers)."""
    settings = {"runtime": {"rollbacks": {"strategy": "always"}}}
    with _logging_to(log or markers.parent / LOG_FILE):
        _running.set()
        try:
            journal = run_experiment(
                prepared(experiment, markers, variables),
                settings=settings,
                experiment_vars=(
                    dict(variables),
                    {},
                ),  # (configuration vars, secret vars), as `chaos run --var`
            )
        finally:
            _running.clear()
    return judged(journal)


@contextlib.contextmanager
def _logging_to(path: Path) -> Iterator[None]:
    """chaoslib's log lines (INFO and up) into `path` and nowhere else while the block runs."""
    logger = logging.getLogger("chaostoolkit")
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def judged(journal: dict[str, Any]) -> dict[str, Any]:
    """The journal, "failed" when a method action failed although chaoslib says "completed".

    chaoslib records a failed action and carries on: a fault that never started (a FIS
    experiment that failed, an SSM command refused) would leave the steady state intact and
    the trial would pass having measured nothing; so would an undo that failed.
    """
    failed = [
        r.get("activity", {}).get("name")
        for r in journal.get("run") or []
        if r.get("status") == "failed" and r.get("activity", {}).get("type") == "action"
    ]
    if failed and journal.get("status") == "completed":
        journal["status"] = "failed"
        journal["harness_failed_actions"] = failed
    return journal


def run_rollbacks(experiment: dict[str, Any], variables: dict[str, Any]) -> list[dict[str, Any]]:
    """Only the experiment's rollbacks, each once, with the scenario's variables: what
    `harness cleanup --plan` does after a run was killed before its rollbacks could run.

    Safe only because every rollback in the catalog is idempotent and finds what to undo from
    the marks its action left (labels, annotations, tags), doing nothing when there are none.
    One record per rollback: name, status ("succeeded" or "failed") and the error if any.
    """
    from chaoslib.activity import execute_activity
    from chaoslib.configuration import load_configuration
    from chaoslib.secret import load_secrets

    configuration = load_configuration(
        {**variables, **(experiment.get("configuration") or {})}, extra_vars=dict(variables)
    )
    secrets = load_secrets(experiment.get("secrets") or {}, configuration)
    named = {
        a.get("name"): a
        for a in [
            *(experiment.get("steady-state-hypothesis") or {}).get("probes", []),
            *experiment.get("method", []),
        ]
        if "ref" not in a
    }
    records = []
    for activity in experiment.get("rollbacks") or []:
        activity = named.get(activity["ref"], activity) if "ref" in activity else activity
        activity = {k: v for k, v in activity.items() if k != "pauses"}  # no waiting in a clean-up
        run = execute_activity(experiment, activity, configuration, secrets, dry=None)
        records.append(
            {"name": activity.get("name"), "status": run.get("status"), "error": run.get("exception")}
        )
    return records


def interrupt_for_abort() -> bool:
    """Stop the running experiment now, with rollbacks; False when no experiment is running."""
    if not _running.is_set():
        return False
    os.kill(os.getpid(), signal.SIGUSR1)
    return True

"""`harness validate FILE…`: check plans and Chaos Toolkit experiments before anything runs.

A file is a plan when it is a mapping with `scenarios`, an experiment when it has `method`
or `steady-state-hypothesis`. Experiments are checked by chaoslib itself
(`ensure_experiment_is_valid`: python activity modules are imported and their arguments
checked against the functions' signatures), because that is what `chaos run` will accept.
chaoslib stops at its first problem and does not say where it is, so we find the activity
it complains about in the YAML node tree and report that activity's line.

Note that chaoslib's validation also resolves the experiment's configuration and secrets
(environment variables, possibly Vault); an experiment that needs an unset variable is
reported as invalid here, as `chaos run` would.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.plan import loading
from harness.plan.loading import FileProblemsError, PlanError, Problem

_EXPERIMENT_SUFFIXES = (".yaml", ".yml", ".json")
"""The extensions chaoslib's loader accepts."""

_SECTIONS = (
    ("hypothesis", ("steady-state-hypothesis",)),
    ("method", ("method",)),
    ("rollback", ("rollbacks",)),
    ("tag", ("tags",)),
    ("control", ("controls",)),
    ("extension", ("extensions",)),
    ("secret", ("secrets",)),
    ("configuration", ("configuration",)),
)
"""Where an experiment-level message points when it names a section."""


class ExperimentError(FileProblemsError):
    """A Chaos Toolkit experiment is invalid; the message names the file and line."""


@contextmanager
def _quiet_chaoslib() -> Iterator[None]:
    """Keep chaoslib's logger ("chaostoolkit") and its deprecation warnings out of the output."""
    logger = logging.getLogger("chaostoolkit")
    disabled = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.disabled = disabled


def _activities(data: dict[str, Any]) -> Iterator[tuple[loading.Key, dict[str, Any], bool]]:
    """Every activity with its key path, and whether it is a hypothesis probe."""
    hypothesis = data.get("steady-state-hypothesis")
    if isinstance(hypothesis, dict) and isinstance(hypothesis.get("probes"), list):
        for i, probe in enumerate(hypothesis["probes"]):
            if isinstance(probe, dict):
                yield ("steady-state-hypothesis", "probes", i), probe, True
    for section in ("method", "rollbacks"):
        activities = data.get(section)
        if isinstance(activities, list):
            for i, activity in enumerate(activities):
                if isinstance(activity, dict):
                    yield (section, i), activity, False


def _fails_alone(activity: dict[str, Any], probe: bool, message: str) -> bool:
    """Whether chaoslib rejects this activity by itself with the same message."""
    from chaoslib.activity import ensure_activity_is_valid
    from chaoslib.exceptions import ChaosException
    from chaoslib.hypothesis import ensure_hypothesis_is_valid

    try:
        if probe:
            ensure_hypothesis_is_valid({"steady-state-hypothesis": {"title": "-", "probes": [activity]}})
        else:
            ensure_activity_is_valid(activity)
    except ChaosException as again:
        return str(again) == message
    except (AttributeError, TypeError):
        return False
    return False


def _chaos_problem(document: loading._Document, exc: Exception) -> Problem:
    """chaoslib's complaint, at the line of the activity (or section) it is about."""
    message = str(exc) or type(exc).__name__
    data = document.data
    activities = list(_activities(data))
    found = next((key for key, a, probe in activities if _fails_alone(a, probe, message)), None)
    if found is None:  # e.g. a `ref` to an activity that does not exist: the message quotes it
        for key, activity, _ in activities:
            names = [activity.get(k) for k in ("name", "ref")]
            if any(isinstance(n, str) and f"'{n}'" in message for n in names):
                found = key
                break
    if found is not None:
        activity = loading._value_at(data, found)
        _, line = document.locate((*found, "name") if "name" in activity else found)
        label = loading._dotted(found)
        if isinstance(activity.get("name"), str):
            label += f" (activity {activity['name']!r})"
        elif isinstance(activity.get("ref"), str):
            label += f" (ref {activity['ref']!r})"
        return Problem(document.path, line, f"{label}: {message}")
    for word, key in _SECTIONS:
        if word in message.lower() and key in document.lines:
            return Problem(document.path, document.lines[key], f"{loading._dotted(key)}: {message}")
    return Problem(document.path, None, message)


def _experiment_problems(document: loading._Document) -> list[Problem]:
    """Everything wrong with one experiment file: duplicate keys, then chaoslib's verdict."""
    from chaoslib.exceptions import ChaosException
    from chaoslib.experiment import ensure_experiment_is_valid

    path = document.path
    problems = list(document.problems)
    if path.suffix not in _EXPERIMENT_SUFFIXES:
        problems.append(Problem(path, None, "expected a .yaml, .yml or .json file (chaoslib reads no other)"))
        return problems
    if not isinstance(document.data, dict):
        got = "the file is empty" if document.data is None else f"got {loading._show(document.data)}"
        problems.append(Problem(path, 1, f"expected a Chaos Toolkit experiment: a mapping ({got})"))
        return problems
    with _quiet_chaoslib():
        try:
            ensure_experiment_is_valid(document.data)
        except ChaosException as exc:
            problems.append(_chaos_problem(document, exc))
        except (AttributeError, TypeError) as exc:
            # chaoslib assumes the structure is right (`method: 5` fails as "int is not
            # iterable"); that is still a problem in the file, not a bug of ours.
            problems.append(Problem(path, None, f"malformed experiment ({type(exc).__name__}: {exc})"))
    return problems


def validate_experiment(path: Path) -> None:
    """Raise ExperimentError unless chaoslib accepts the experiment file."""
    problems = _experiment_problems(loading._read_document(Path(path), ExperimentError))
    if problems:
        raise ExperimentError(path, problems)


def validate_plan(path: Path) -> None:
    """Raise PlanError listing every problem in the plan and in the experiments it names."""
    loaded = loading._load(Path(path))
    problems = list(loaded.problems)
    checked: set[Path] = set()
    for key, file in loaded.files.items():
        if key[0] != "scenarios" or file in checked:
            continue
        checked.add(file)
        try:
            document = loading._read_document(file, ExperimentError)
        except FileProblemsError as exc:
            problems += exc.problems
            continue
        problems += _experiment_problems(document)
    if problems:
        raise PlanError(path, problems)


def validate_file(path: Path) -> str:
    """Validate a plan or an experiment, decided by its content; returns "plan" or "experiment".

    Raises a FileProblemsError (PlanError, ExperimentError) naming every problem's file and line.
    """
    path = Path(path)
    document = loading._read_document(path, FileProblemsError)
    data = document.data
    if isinstance(data, dict) and "scenarios" in data:
        validate_plan(path)
        return "plan"
    if isinstance(data, dict) and ("method" in data or "steady-state-hypothesis" in data):
        problems = _experiment_problems(document)
        if problems:
            raise ExperimentError(path, problems)
        return "experiment"
    raise FileProblemsError(
        path,
        [
            Problem(
                path,
                1,
                "neither a plan (a mapping with 'scenarios') nor a Chaos Toolkit experiment "
                "(a mapping with 'method' or 'steady-state-hypothesis')",
            )
        ],
    )

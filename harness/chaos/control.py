"""A Chaos Toolkit control that writes every activity's start and end to the run's markers.

The engine adds it to each experiment it runs:

    {"name": "harness-markers", "provider": {"type": "python", "module": "harness.chaos.control",
                                             "arguments": {"path": ".../markers.jsonl"}}}

Scoring reads the markers to place the fault on the load timeline: the first method
action starts the fault, the first rollback action ends it. Chaos Toolkit's activity
hooks do not say which part of the experiment an activity belongs to, so the section is
tracked from the method, rollback and hypothesis hooks, per markers file.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

_lock = threading.Lock()
_section: dict[str, str] = {}
"""markers path -> the experiment section now running (hooks are plain module functions)."""


def write_marker(path: str, **fields: Any) -> None:
    """Append one marker line (one write, so concurrent background activities never interleave)."""
    line = json.dumps({"t": round(time.time(), 6), **fields}, separators=(",", ":")) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def _set(path: str, section: str) -> None:
    with _lock:
        _section[path] = section


def _get(path: str) -> str:
    with _lock:
        return _section.get(path, "steady_state_before")


def before_experiment_control(context: Any, path: str, **_: Any) -> None:
    _set(path, "steady_state_before")


def before_hypothesis_control(context: Any, path: str, **_: Any) -> None:
    if _get(path) != "steady_state_before":
        _set(path, "steady_state_after")


def before_method_control(context: Any, path: str, **_: Any) -> None:
    _set(path, "method")


def after_method_control(context: Any, path: str, **_: Any) -> None:
    _set(path, "after_method")


def before_rollback_control(context: Any, path: str, **_: Any) -> None:
    _set(path, "rollbacks")


def before_activity_control(context: dict[str, Any], path: str, **_: Any) -> None:
    section = _get(path)
    if section == "after_method":
        section = "steady_state_after"
    write_marker(
        path, kind="activity_start", name=context.get("name"), type=context.get("type"), section=section
    )


def after_activity_control(context: dict[str, Any], state: Any, path: str, **_: Any) -> None:
    section = _get(path)
    if section == "after_method":
        section = "steady_state_after"
    status = state.get("status") if isinstance(state, dict) else None
    write_marker(path, kind="activity_end", name=context.get("name"), type=context.get("type"), section=section,
                 status=status)  # fmt: skip


def after_experiment_control(context: Any, path: str, **_: Any) -> None:
    with _lock:
        _section.pop(path, None)

"""A Chaos Toolkit control that writes every activity's start and end to the run's markers.

The engine adds it to each experiment it runs:

    {"name": "harness-markers", "provider": {"type": "python", "module": "harness.chaos.control",
                                             "arguments": {"path": ".../markers.jsonl"}}}

Scoring reads the markers to place the fault on the load timeline: the first method
action starts the fault; the undo ends it, which is the first rollback action, or earlier a
method action that repeats one of the rollbacks (marked `undo`): experiments that end their
method with the undo and a wait, so that the steady state after judges the repaired system,
end the fault there. Chaos Toolkit's activity
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
_undo: dict[str, set[str]] = {}
"""markers path -> the experiment's rollback actions (fingerprints): the same action in the method
is its undo."""


def _fingerprint(activity: Any) -> str:
    """An action's provider as written (before substitution), so a method step and a rollback compare."""
    provider = activity.get("provider") if isinstance(activity, dict) else None
    return json.dumps(provider or {}, sort_keys=True, default=str)


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
    rollbacks = (context.get("rollbacks") if isinstance(context, dict) else None) or []
    with _lock:
        _undo[path] = {
            _fingerprint(a) for a in rollbacks if isinstance(a, dict) and a.get("type") == "action"
        }


def after_method_control(context: Any, path: str, **_: Any) -> None:
    _set(path, "after_method")


def before_rollback_control(context: Any, path: str, **_: Any) -> None:
    _set(path, "rollbacks")


def before_activity_control(context: dict[str, Any], path: str, **_: Any) -> None:
    section = _get(path)
    if section == "after_method":
        section = "steady_state_after"
    fields = {"name": context.get("name"), "type": context.get("type"), "section": section}
    if section == "method" and context.get("type") == "action":
        with _lock:
            if _fingerprint(context) in _undo.get(path, set()):
                fields["undo"] = True
    write_marker(path, kind="activity_start", **fields)


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
        _undo.pop(path, None)

"""The preflight's checklist: one line per check (ok, blocked, warning, unreachable) and its exit code.

Shared by the Kubernetes and AWS halves of the preflight (preflight.py, awscheck.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from rich.text import Text


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    """The run can go ahead, with less (a missing sample, an undecided check)."""
    BLOCKED = "blocked"
    """The run would fail or must not start: exit 2."""
    UNREACHABLE = "unreachable"
    """The cluster or AWS did not answer: exit 3."""


@dataclass(frozen=True)
class Check:
    """One line of the checklist: what was checked, the outcome, why, and what to do."""

    name: str
    status: Status
    reason: str
    fix: str = ""


_STYLE = {Status.OK: "green", Status.WARNING: "yellow", Status.BLOCKED: "red", Status.UNREACHABLE: "red"}


def render(check: Check) -> Text:
    """`blocked  permissions: delete pods in subs ... — fix: ...`, the status coloured."""
    text = Text.assemble(
        (f"{check.status.value:<12}", _STYLE[check.status]), (check.name, "bold"), f": {check.reason}"
    )
    if check.fix and check.status is not Status.OK:
        text.append(f" — fix: {check.fix}")
    return text


def exit_code(checks: Iterable[Check]) -> int:
    """3 when something did not answer, else 2 when something blocks, else 0."""
    statuses = {c.status for c in checks}
    if Status.UNREACHABLE in statuses:
        return 3
    return 2 if Status.BLOCKED in statuses else 0

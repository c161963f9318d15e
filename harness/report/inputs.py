"""The values report.html is rendered from: a run's result, its plan and, per scenario trial,
what its files hold.

The report renders these and reads no file: harness.store.runview reads a run folder into them
(and masks secrets there, where files are read), so the page can be rendered from anything that
builds them, and a test can build them without a folder. A file that should be there but is not,
or cannot be read, is a `Missing` in its place, so the page can say what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness import scoring


@dataclass(frozen=True)
class Missing:
    """A scenario file the run folder does not hold, or holds but cannot be read."""

    file: str
    """Its name in the scenario folder (`timeline.jsonl`)."""
    problem: str | None = None
    """Why the file, which exists, could not be read; None when there is no such file."""


@dataclass(frozen=True)
class Activity:
    """One activity of a Chaos Toolkit journal (method, rollback or steady-state probe), as run."""

    section: str
    """Where the journal has it: `method`, `rollbacks`, or the steady state `before` / `after`."""
    name: str | None
    type: str | None
    """`action` or `probe`."""
    provider: Mapping[str, Any]
    """The experiment's provider: its type, module and func, url, path, arguments."""
    pauses: Any
    status: str | None
    start: str | None
    """When it started, ISO 8601 as chaoslib writes it (naive means UTC)."""
    duration_s: float | None
    tolerance: Any = None
    has_tolerance: bool = False
    """Whether the activity declares a tolerance: a tolerance of null is still one."""
    tolerance_met: bool | None = None
    output: Any = None
    has_output: bool = False
    """Whether the run recorded an output: an output of null is still one."""
    exception: Any = None
    """The last line of the traceback chaoslib recorded, if any."""


@dataclass(frozen=True)
class SteadyState:
    """One steady-state check (before or after the method): whether it held, and its probes."""

    met: bool | None
    probes: Sequence[Activity] = ()


@dataclass(frozen=True)
class Journal:
    """What the report shows of a Chaos Toolkit journal (already without its secrets)."""

    title: str | None
    description: str | None
    tags: Sequence[Any]
    status: str | None
    deviated: bool | None
    duration_s: float | None
    configuration: Mapping[str, Any]
    hypothesis: str | None
    """The steady-state hypothesis's title."""
    activities: Sequence[Activity]
    """The method's activities, then the rollbacks, in the order they ran."""
    before: SteadyState | None
    """None when the steady state was not checked before the method."""
    after: SteadyState | None


@dataclass(frozen=True)
class Trial:
    """The files of one scenario trial, as values."""

    name: str
    trial: int
    markers: list[dict[str, Any]] | Missing
    series: scoring.Series | Missing
    """The timeline, read as scoring reads it."""
    journal: Journal | Missing
    controlplane: list[dict[str, Any]] = field(default_factory=list)
    """Control-plane probe records (Kubernetes targets); none on the testbed."""


@dataclass(frozen=True)
class RunInputs:
    """Everything the page of one run shows."""

    result: Mapping[str, Any]
    """result.json (harness.result/v1)."""
    plan: Mapping[str, Any] | None
    """The run folder's plan.json; None when it is missing or unreadable."""
    trials: Mapping[tuple[str, int], Trial]
    """Per (scenario name, trial) of result.json's scenarios."""

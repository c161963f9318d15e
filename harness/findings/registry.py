"""The rule registry's parts: what a rule reads (`ScenarioInputs`, `RunInputs`), what it returns
(`Draft`), and `Rule`, which gives a draft its stable id and severity.

A rule is a small pure function over one scenario trial's result entry (as a dict: keys the
result model does not name yet, such as `recovery_phases`, are read too), the resolved plan
(plan.json) and the target's facts. It returns None when its input is absent or does not show
what it looks for: a rule stays silent rather than guesses.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from harness.result import model as result_model


class Severity(StrEnum):
    """How much a finding matters: critical (users or data were hurt in a way a plan should not
    accept), warning (a change would clearly help), info (worth knowing, no harm shown)."""

    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


SEVERITY_ORDER = {Severity.CRITICAL: 0, Severity.WARNING: 1, Severity.INFO: 2}
"""Most severe first: the order findings are listed in."""


class Scope(StrEnum):
    """What a rule reads: one scenario trial, or the run as a whole (its trials, its target)."""

    SCENARIO = "scenario"
    RUN = "run"


def number(value: Any) -> float | None:
    """A finite number as float; None for anything else (null, a string, a boolean, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def walk(data: Any, dotted: str) -> Any:
    """The value at a dotted path in nested mappings; None where the path ends early."""
    for part in dotted.split("."):
        if not isinstance(data, Mapping):
            return None
        data = data.get(part)
    return data


@dataclass(frozen=True)
class ScenarioInputs:
    """One scenario trial as a rule sees it."""

    scenario: Mapping[str, Any]
    """The trial's result entry as a dict (result.json's shape)."""
    plan: Mapping[str, Any]
    """The resolved plan (plan.json); empty when unknown."""
    target: Mapping[str, Any]
    """The target's facts (result.json's `target`); empty when unknown."""

    @property
    def label(self) -> str:
        return f"{self.scenario.get('name')}#{self.scenario.get('trial') or 1}"

    def metric(self, dotted: str) -> float | None:
        """A metric's value (dotted for nested ones); None when absent or null."""
        return number(walk(self.scenario.get("metrics"), dotted))

    def has_metric(self, dotted: str) -> bool:
        """Whether the metric was written at all (null included): null can be an outcome."""
        parent, _, leaf = dotted.rpartition(".")
        holder = walk(self.scenario.get("metrics"), parent) if parent else self.scenario.get("metrics")
        return isinstance(holder, Mapping) and leaf in holder

    def instant(self, name: str) -> float | None:
        """One of result.json's `phases` instants (`fault_start_t`, ...), Unix seconds."""
        return number(walk(self.scenario.get("phases"), name))

    def phase(self, name: str) -> float | None:
        """When a recovery phase (`recovery_phases`: fault_applied, detected, rerouted, ...)
        happened, Unix seconds; None when the phase is absent or its time unknown."""
        for entry in self.scenario.get("recovery_phases") or []:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                return number(entry.get("t"))
        return None

    def phase_entry(self, name: str) -> Mapping[str, Any] | None:
        for entry in self.scenario.get("recovery_phases") or []:
            if isinstance(entry, Mapping) and entry.get("name") == name:
                return entry
        return None

    def since_fault(self, name: str) -> float | None:
        """A recovery phase's time after `fault_applied`, seconds."""
        entry = self.phase_entry(name)
        if entry is None:
            return None
        at_s = number(entry.get("at_s"))
        if at_s is not None:
            return at_s
        t, start = number(entry.get("t")), self.phase("fault_applied")
        return None if t is None or start is None else t - start

    def plan_value(self, dotted: str) -> float | None:
        return number(walk(self.plan, dotted))

    def fact(self, *keys: str) -> float | None:
        """The first of these target facts that is a number."""
        for key in keys:
            value = number(self.target.get(key))
            if value is not None:
                return value
        return None


@dataclass(frozen=True)
class RunInputs:
    """The run as a whole, for rules over its trials or its target."""

    scenarios: Sequence[Mapping[str, Any]]
    plan: Mapping[str, Any]
    target: Mapping[str, Any]


@dataclass(frozen=True)
class Effect:
    """A recommended change's expected effect on one metric, signed, in the metric's unit."""

    metric: str
    change: float
    text: str


@dataclass(frozen=True)
class Draft:
    """What a rule found, before the registry adds its id and severity."""

    title: str
    evidence: str
    recommendation: str
    t_from: float | None = None
    t_to: float | None = None
    expected_effect: Effect | None = None
    scenario: str | None = None


@dataclass(frozen=True)
class Rule:
    """A registered rule: a stable id, the severity of what it finds, what it reads, the check."""

    id: str
    severity: Severity
    scope: Scope
    reads: tuple[str, ...]
    """The inputs it reads, for docs/findings.md: `metrics.X`, `recovery_phases.X`, `plan.X`, `target.X`..."""
    check: Callable[[Any], Draft | list[Draft] | None]

    @property
    def why(self) -> str:
        """The first paragraph of the check's docstring: what it looks for and why it matters."""
        doc = (self.check.__doc__ or "").strip()
        return " ".join(doc.split("\n\n", 1)[0].split())

    def findings(self, inputs: ScenarioInputs | RunInputs) -> list[result_model.Finding]:
        """What the rule finds: none, one, or (run-level rules) one per scenario it is about."""
        found = self.check(inputs)
        drafts = found if isinstance(found, list) else [] if found is None else [found]
        return [self._finding(d) for d in drafts]

    def _finding(self, draft: Draft) -> result_model.Finding:
        data: dict[str, Any] = {
            "id": self.id,
            "severity": self.severity.value,
            "title": draft.title,
            "evidence": draft.evidence,
        }
        if draft.t_from is not None:
            data["t_from"] = round(draft.t_from, 3)
        if draft.t_to is not None:
            data["t_to"] = round(draft.t_to, 3)
        data["recommendation"] = draft.recommendation
        if draft.expected_effect is not None:
            e = draft.expected_effect
            data["expected_effect"] = {"metric": e.metric, "change": round(e.change, 6), "text": e.text}
        if draft.scenario is not None:
            data["scenario"] = draft.scenario
        return result_model.Finding.model_validate(data)


# --- words and numbers, as every rule writes them -------------------------------------------


def seconds(value: float) -> str:
    return f"{value:.1f} s"


def percent(value: float) -> str:
    return f"{100 * value:.2f} %"


def ms(value: float) -> str:
    return f"{value:.0f} ms"

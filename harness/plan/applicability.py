"""Whether a scenario applies to the target a run is on: its `requires` against the target's facts.

The engine asks once per scenario, after the target is open and has recorded its facts (the
"target" entry of result.json). A scenario that does not apply is not run and not failed: it is
reported "not applicable" with the reason this module gives, in the console, result.json,
summary.md, the HTML report, gates and comparisons. Pure: facts in, a reason (or None) out.

Only what the facts say decides. A Kubernetes target whose provider is unknown (no version, no
nodes readable) runs the scenario, and the experiment's own checks refuse what it cannot reach;
the testbed's control plane is always touchable, in both profiles.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.plan.models import Requirement

MANAGED_PROVIDERS = frozenset({"eks", "gke", "aks"})
"""Providers whose control plane is run by the cloud (harness.kubernetes.facts.provider)."""
NOT_VISIBLE = "managed/not visible"
"""What the facts' `control_plane` says when no control-plane node or static pod can be seen."""


def not_applicable(requires: Iterable[Requirement | str], facts: Mapping[str, Any]) -> str | None:
    """Why a scenario with these requirements does not apply to the target; None: it applies."""
    for requirement in requires:
        if Requirement(requirement) is Requirement.SELF_MANAGED_CONTROL_PLANE:
            reason = _managed_control_plane(facts)
            if reason is not None:
                return reason
    return None


def _managed_control_plane(facts: Mapping[str, Any]) -> str | None:
    if facts.get("kind") != "kubernetes":
        return None  # the testbed runs its own etcd: always touchable
    provider = facts.get("provider")
    if provider in MANAGED_PROVIDERS:
        return (
            f"managed control plane: {provider} runs etcd and the API servers out of reach, "
            "and the scenario requires self-managed-control-plane"
        )
    if facts.get("control_plane") == NOT_VISIBLE:
        return (
            "managed control plane: no control-plane node or static pod is visible in the cluster, "
            "and the scenario requires self-managed-control-plane"
        )
    return None


def label(reason: str) -> str:
    """How a not-applicable scenario is shown in one line: `not applicable (managed control plane)`."""
    short = reason.split(":", 1)[0]
    return f"not applicable ({short})"

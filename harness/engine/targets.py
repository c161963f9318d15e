"""What the engine runs against. A target says where the service is, what its experiments
need in their configuration, how to heal it after a scenario, and what facts about it
belong in the result.

The testbed target lives here; the Kubernetes one in harness.kubernetes.target (imported only
when a plan asks for it, so the testbed needs no Kubernetes client).
"""

from __future__ import annotations

import contextlib
import platform
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness import __version__
from harness.errors import InputError
from harness.testbed import cluster, faults, profiles
from harness.testbed import state as tbstate
from harness.testbed.groundtruth import read_events


class Target(Protocol):
    url: str

    def open(self) -> None: ...
    def close(self) -> None: ...
    def configuration(self) -> dict[str, Any]: ...
    def heal(self) -> list[str]: ...
    def ground_truth(self, start_t: float, end_t: float) -> list[dict[str, Any]]: ...
    def facts(self) -> dict[str, Any]: ...
    def observe(self, sdir: Path) -> contextlib.AbstractContextManager[None]:
        """Sample the target's own health (control plane) into `sdir` while a scenario runs."""
        ...


@dataclass
class TestbedTarget:
    """The embedded testbed: started if it is not running, and stopped after if it was started here."""

    __test__ = False  # not a pytest class
    profile: profiles.Profile
    root: Path
    keep: bool = False
    url: str = ""
    started_here: bool = field(default=False, init=False)

    def open(self) -> None:
        try:
            state = tbstate.load(self.root)
            running = cluster.running(state)
        except tbstate.NotRunningError:
            running = False
        if running and state.profile.name != self.profile.name:
            raise InputError(
                f"target: the plan wants a {self.profile.name} testbed but a {state.profile.name} one is running "
                f"in {self.root}; run `harness testbed down` first"
            )
        if not running:
            state = cluster.up(self.profile, self.root)
            self.started_here = True
        self.url = state.lb_url

    def close(self) -> None:
        if self.started_here and not self.keep:
            cluster.down(self.root)

    def configuration(self) -> dict[str, Any]:
        return {"testbed_dir": str(self.root)}

    def heal(self) -> list[str]:
        """After each scenario: undo anything the rollbacks left, and spread the replicas again
        so that the next scenario starts from the same cluster as this one did."""
        undone = faults.cleanup(self.root) if faults.ledger(self.root) else []
        settled = faults.settle(self.root)  # a node back from a crash must be Ready to take replicas
        moved = faults.rebalance(self.root)
        return undone + settled + moved + (faults.settle(self.root) if moved else [])

    def ground_truth(self, start_t: float, end_t: float) -> list[dict[str, Any]]:
        return [
            {"t": r.t, "event": r.event.value, **r.fields}
            for r in read_events(self.root / "events.jsonl")
            if start_t <= r.t <= end_t
        ]

    @contextlib.contextmanager
    def observe(self, sdir: Path) -> Iterator[None]:
        """Nothing to sample: the testbed's ground truth (events.jsonl) already says what happened."""
        yield

    def facts(self) -> dict[str, Any]:
        state = tbstate.load(self.root)
        t = state.profile.timings
        return {
            "kind": "testbed",
            "profile": state.profile.name.value,
            "url": state.lb_url,
            "etcd_members": [m.name for m in state.etcd],
            "nodes": [{"name": n.name, "zone": n.zone} for n in state.nodes],
            "replicas": state.profile.replicas,
            "lb_health_checks": state.profile.lb_health_checks,
            "node_grace_s": t.node_grace_s,
            "eviction_s": t.eviction_s,
        }


def environment() -> dict[str, Any]:
    """Versions that explain a result, for the report."""
    from importlib.metadata import PackageNotFoundError, version

    def v(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {
        "harness": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "chaostoolkit_lib": v("chaostoolkit-lib"),
        "locust": v("locust"),
        "host": platform.node(),
    }


def make_target(plan_target: Any, testbed_dir: Path, keep_testbed: bool = False, url: str = "") -> Target:
    """The plan's target; `url` is the service's URL (the plan's load.host) for a Kubernetes target."""
    kind = getattr(plan_target, "kind", None)
    if kind == "testbed":
        return TestbedTarget(profiles.builtin(plan_target.profile), testbed_dir, keep=keep_testbed)
    if kind == "kubernetes":
        from harness.kubernetes import KubernetesTarget  # the kubernetes client only when asked for

        return KubernetesTarget(plan_target, url=url)
    raise InputError(
        f"target: kind {kind!r} cannot be run by this version of the harness (use kind: testbed or kubernetes)"
    )

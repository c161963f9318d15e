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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from harness import __version__, runlock
from harness.errors import InputError
from harness.testbed import cluster, faults, profiles, sampler
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
    def observe(self, sdir: Path, service: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Sample the target's own health (control plane) into `sdir` while a scenario runs;
        `service` is the scenario's Service name (its `service_name`), where it has one."""
        ...


@dataclass
class TestbedTarget:
    """The embedded testbed: started if it is not running, and stopped after if it was started here.

    A run holds the folder's run lock (harness.runlock) from open() to close(), so two runs never
    share one testbed: the second fails at once naming the first, or waits up to `wait_s`.
    """

    __test__ = False  # not a pytest class
    profile: profiles.Profile
    root: Path
    keep: bool = False
    url: str = ""
    run_id: str = ""
    """Who holds the run lock, for the message another run prints."""
    wait_s: float = 0.0
    """How long to wait for a run that holds the testbed; 0: fail at once."""
    say: Callable[[str], None] | None = None
    """Where to say that this run waits, and what it healed of a killed holder."""
    settings: dict[str, Any] = field(default_factory=dict)
    """What the plan changed of the profile (target.settings, as profiles.builtin takes them): a
    running testbed must have these values to be used."""
    sampler_options: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for sampler.TestbedSampler (intervals); empty: its defaults."""
    started_here: bool = field(default=False, init=False)
    lock: runlock.RunLock | None = field(default=None, init=False)
    healed_before: list[str] = field(default_factory=list, init=False)
    """What a run killed while holding the lock had left applied, undone before this run."""

    def open(self) -> None:
        def waiting(holder: dict[str, Any] | None) -> None:
            if self.say is not None:
                self.say(
                    f"the testbed is in use by {runlock.describe(holder)}; waiting up to {self.wait_s:.0f} s"
                )

        self.lock = runlock.acquire(self.root, self.run_id or "unnamed", self.wait_s, on_wait=waiting)
        try:
            self._open_locked()
        except BaseException:
            self.lock.release()
            self.lock = None
            raise

    def _open_locked(self) -> None:
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
        if running and (differ := _differences(self.settings, state.profile)):
            raise InputError(
                f"target.settings: the plan wants {', '.join(differ)} but the testbed running in {self.root} "
                "has other values; run `harness testbed down` first"
            )
        assert self.lock is not None
        if running and self.lock.previous:
            # The last holder died holding the lock (SIGKILL, a lost machine): what `harness cleanup`
            # would undo is undone first, so its faults do not count against this run.
            self.healed_before = faults.cleanup(self.root) + faults.settle(self.root)
            if self.say is not None:
                who = runlock.describe(self.lock.previous)
                self.say(f"{who} died holding the testbed; healed first: {len(self.healed_before)} step(s)")
        if not running:
            state = cluster.up(self.profile, self.root)
            self.started_here = True
        self.url = state.lb_url

    def close(self) -> None:
        try:
            if self.started_here and not self.keep:
                cluster.down(self.root)
        finally:
            if self.lock is not None:
                self.lock.release()
                self.lock = None

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
    def observe(self, sdir: Path, service: str | None = None) -> Iterator[None]:
        """Sample the control plane (probe writes and reads into etcd, ground truth, repair state)
        into sdir/controlplane.jsonl while the block runs (harness.testbed.sampler)."""
        with sampler.open_sampler(self.root, sdir, **self.sampler_options):
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
            **(
                {"lock": {**self.lock.record(), "healed": self.healed_before}}
                if self.lock is not None
                else {}
            ),
        }


def _differences(settings: dict[str, Any], running: profiles.Profile) -> list[str]:
    """The plan's settings (`name=value`) that the running testbed's profile does not have."""
    out = []
    for name, wanted in settings.items():
        if name == "timings":
            out += [f"{k}={v}" for k, v in wanted.items() if getattr(running.timings, k) != v]
        elif getattr(running, name) != wanted:
            out.append(f"{name}={wanted}")
    return out


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


def make_target(
    plan_target: Any,
    testbed_dir: Path,
    keep_testbed: bool = False,
    url: str = "",
    run_id: str = "",
    wait_s: float = 0.0,
    say: Callable[[str], None] | None = None,
) -> Target:
    """The plan's target; `url` is the service's URL (the plan's load.host) for a Kubernetes target.
    With a `run_id` the target holds its lock (testbed folder, or Lease) while open, waiting up to `wait_s`."""
    kind = getattr(plan_target, "kind", None)
    if kind == "testbed":
        settings = plan_target.settings.overrides()
        return TestbedTarget(
            profiles.builtin(plan_target.profile, **settings), testbed_dir, keep=keep_testbed, run_id=run_id,
            wait_s=wait_s, say=say, settings=settings,
        )  # fmt: skip
    if kind == "kubernetes":
        from harness.kubernetes import KubernetesTarget  # the kubernetes client only when asked for

        if run_id:
            return KubernetesTarget(plan_target, url=url, run_id=run_id, lock=True, wait_s=wait_s, say=say)
        return KubernetesTarget(plan_target, url=url)
    raise InputError(
        f"target: kind {kind!r} cannot be run by this version of the harness (use kind: testbed or kubernetes)"
    )

"""EC2 instance states behind a cluster's nodes: the sampler's `instance` lines.

A node fault on AWS (an instance terminated or stopped by the catalog's experiments, by FIS,
by an Auto Scaling group) shows in the control plane only late and indirectly: the node goes
NotReady after its grace period, or its Node object disappears. EC2 says it at once, so with
the target's `aws` settings the sampler follows the instances behind the nodes (their
`spec.providerID`, `aws:///<zone>/i-...`): every one seen during the scenario, so an instance
whose Node was deleted is still followed to `terminated`. Its state is written once at the
start and at every change; a failed DescribeInstances is written once (an `error` line) until
one succeeds again. Nothing is inferred from a failed call.

Called from harness.kubernetes.probes (its `instances` thread); the line logic is pure.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from harness.kubernetes import client

log = logging.getLogger(__name__)

STOPPED = frozenset({"stopping", "stopped", "shutting-down", "terminated"})
"""Instance states that say a machine is going or gone: the fault took effect."""


def changes(
    before: Mapping[str, str], now: Mapping[str, str], nodes: Mapping[str, str], t: float
) -> list[dict[str, Any]]:
    """`instance` lines for every instance whose state differs from `before` (all of them at first)."""
    return [
        {"t": t, "kind": "instance", "id": i, "node": nodes.get(i), "state": state, "error": None}
        for i, state in sorted(now.items())
        if before.get(i) != state
    ]


def describe(ec2: Any, ids: list[str]) -> dict[str, str]:
    """Instance id -> state name. A filter, not InstanceIds: an id EC2 no longer knows is no error."""
    out: dict[str, str] = {}
    for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-id", "Values": ids}]
    ):
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                out[instance["InstanceId"]] = instance["State"]["Name"]
    return out


def follow(
    aws: dict[str, Any],
    core: Any,
    running: Callable[[float], bool],
    write: Callable[[dict[str, Any]], None],
    clock: Callable[[], float],
    poll_s: float,
    timeout: tuple[float, float],
) -> None:
    """Poll the nodes' instances until `running(wait)` says stop; write their state changes."""
    from chaosaws import aws_client  # boto3 only where the target has AWS

    from harness.chaos.activities.aws import instance_id_from_provider_id as instance_id

    ec2 = aws_client("ec2", aws, None)
    nodes: dict[str, str] = {}  # instance id -> node name (every one seen)
    states: dict[str, str] = {}
    failing = False
    wait = 0.0
    while running(wait):
        started = time.monotonic()
        try:
            for n in client.list_all(core.list_node, resource_version="0", _request_timeout=timeout):
                found = instance_id(n.spec.provider_id if n.spec else None)
                if found is not None:
                    nodes[found] = n.metadata.name
        except Exception as exc:  # the API server is down: keep following the instances known
            log.debug("instances: nodes unreadable: %r", exc)
        if nodes:
            t = clock()
            try:
                now = describe(ec2, sorted(nodes))
            except Exception as exc:
                if not failing:
                    text = f"{type(exc).__name__}: {exc}"
                    write({"t": t, "kind": "instance", "id": None, "node": None, "state": None,
                           "error": text if len(text) <= 300 else text[:297] + "..."})  # fmt: skip
                failing = True
            else:
                failing = False
                for line in changes(states, now, nodes, t):
                    write(line)
                states.update(now)
        wait = max(0.0, poll_s - (time.monotonic() - started))

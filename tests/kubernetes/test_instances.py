"""The sampler's EC2 instance states against kmock and moto (server mode): what AWS says of the nodes'
machines, and the fault effect scored from it. moto changes an instance's state at once (no
`shutting-down` lasting a minute) and nothing replaces it: the lines' times say nothing of AWS's."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
from kubernetes import client as k8s_client

from harness.kubernetes import client, instances, probes
from harness.scoring import stages
from harness.scoring.windows import Phases
from tests.aws.conftest import aws, moto_url  # noqa: F401  (fixtures)
from tests.kubernetes.conftest import NAMESPACE, SELECTOR, Clusters, target_spec

FAST = {"interval_s": 0.25, "poll_s": 0.25, "request_timeout_s": 2.0, "aws_poll_s": 0.25}


def test_changes_are_written_once_per_state() -> None:
    """Every instance's first state, then only what changed; the node is named where known."""
    first = instances.changes({}, {"i-1": "running", "i-2": "running"}, {"i-1": "node-a"}, 1.0)
    assert [(line["id"], line["node"], line["state"]) for line in first] == [
        ("i-1", "node-a", "running"), ("i-2", None, "running")]  # fmt: skip
    later = instances.changes(
        {"i-1": "running", "i-2": "running"}, {"i-1": "running", "i-2": "stopping"}, {}, 2.0
    )
    assert [(line["id"], line["state"]) for line in later] == [("i-2", "stopping")]


def test_a_terminated_nodes_instance_is_followed_and_confirms_the_fault(
    clusters: Clusters,
    aws: dict[str, Any],  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
) -> None:
    """Nodes backed by moto instances: one terminated (and its Node deleted) is written `terminated`,
    the others stay `running`, another account's instance is never asked about, and the fault is confirmed by AWS."""
    ec2 = boto3.client("ec2", region_name=aws["aws_region"])
    image = ec2.describe_images()["Images"][0]["ImageId"]
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=image, MinCount=4, MaxCount=4,
                                                       InstanceType="t3.micro")["Instances"]]  # fmt: skip
    stranger = ids.pop()  # no node of this cluster
    nodes = dict(zip(("node-a", "node-b", "node-c"), ids, strict=True))
    with clusters.allowed.api() as api:
        core = k8s_client.CoreV1Api(api)
        for node, iid in nodes.items():
            core.patch_node(node, {"spec": {"providerID": f"aws:///{aws['aws_region']}a/{iid}"}})
        connection = client.connect(target_spec())
        try:
            with probes.open_sampler(
                connection.api, NAMESPACE, SELECTOR, tmp_path, aws=aws, **FAST
            ) as sampler:
                start = time.time()
                time.sleep(0.8)
                fault = time.time()
                ec2.terminate_instances(InstanceIds=[nodes["node-b"]])
                # as the cloud controller does: the instance must still be followed
                core.delete_node("node-b")
                ec2.terminate_instances(InstanceIds=[stranger])
                time.sleep(1.0)
                end = time.time()
        finally:
            connection.close()
    assert sampler.errors == []
    lines = [json.loads(line) for line in (tmp_path / probes.FILE).read_text().splitlines()]
    seen = [(line["id"], line["node"], line["state"]) for line in lines if line["kind"] == "instance"]
    assert sorted(seen[:3]) == sorted((iid, node, "running") for node, iid in nodes.items())
    assert seen[3:] == [(nodes["node-b"], "node-b", "terminated")]
    gone = next(line for line in lines if line["kind"] == "instance" and line["state"] == "terminated")
    assert fault <= gone["t"] <= end, "seen after the termination, within the scenario"
    marks = [
        {"t": fault, "kind": "activity_start", "name": "terminate", "type": "action", "section": "method"}
    ]
    window = Phases(baseline_start_t=start, fault_start_t=fault, fault_end_t=fault, end_t=end)
    effect = stages.fault_effect(window, marks, stages.UserView(None, 0.0, 1.0), None, lines)
    assert effect.outcome is stages.Outcome.EFFECT_OBSERVED
    assert effect.activities[0].source is stages.Source.AWS
    assert effect.activities[0].evidence.startswith(
        f"EC2 instance {nodes['node-b']} (node node-b) terminated +"
    )

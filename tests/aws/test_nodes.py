"""The SSM faults on nodes and the control plane, against both emulators (kmock for the cluster,
moto for EC2 and SSM): marks carry cluster and run and are read back only for this cluster,
commands go by instance id, the harness's own node is never chosen, and a control-plane member is
stopped only when etcd keeps quorum or another API server serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from chaoslib.exceptions import ActivityFailed
from kubernetes import client as k8s_client
from kubernetes.config import kube_config

from harness.chaos.activities import aws as activities
from tests.aws.conftest import REGION
from tests.aws.test_actions import ZONES, _config, _ec2, _network, _node
from tests.kubernetes.conftest import NAMESPACE, open_clusters

NODES = ("node-a", "node-b", "node-c")


@pytest.fixture
def cluster(aws: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """kmock's three nodes (one per zone, the service's pods on each) as EC2 instances of one VPC,
    with InternalIPs; the allowed context in the configuration."""
    monkeypatch.delenv(activities.HARNESS_NODE_ENV, raising=False)
    net = _network()
    with open_clusters(tmp_path, monkeypatch, resources=("v1/endpoints",)) as clusters:
        # the kubernetes package reads $KUBECONFIG once, at import; the engine's ContextPin does this
        monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(clusters.kubeconfig))
        instances, ips = {}, {}
        with clusters.allowed.api() as api:
            core = k8s_client.CoreV1Api(api)
            for i, name in enumerate(NODES):
                ips[name] = f"10.0.{i}.10"
                instances[name] = _node(net["subnets"][ZONES[i]], "prod", "cp", private_ip=ips[name])
                core.patch_node(name, {
                    "spec": {"providerID": f"aws:///{ZONES[i]}/{instances[name]}"},
                    "status": {"addresses": [{"type": "InternalIP", "address": ips[name]}]},
                })  # fmt: skip
        yield {"clusters": clusters, "net": net, "instances": instances, "ips": ips,
               "config": _config(aws, kubernetes_context="test-cluster")}  # fmt: skip


def _commands() -> list[dict[str, Any]]:
    return boto3.client("ssm", region_name=REGION).list_commands()["Commands"]


def _marks() -> dict[str, dict[str, str]]:
    tags = _ec2().describe_tags(Filters=[{"Name": "key", "Values": [activities.FAULT_TAG, activities.CLUSTER_TAG,
                                                                      activities.RUN_TAG]}])["Tags"]  # fmt: skip
    out: dict[str, dict[str, str]] = {}
    for t in tags:
        out.setdefault(t["ResourceId"], {})[t["Key"]] = t["Value"]
    return out


# --- kubelet ---------------------------------------------------------------------------------------
def test_stop_kubelet_never_reuses_another_clusters_mark_nor_picks_the_harness_node(
    cluster: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An instance in another cluster already marked kubelet is not reused; of the service's nodes,
    the harness's own (HARNESS_NODE_NAME) is never the one; the chosen instance is marked with
    fault, cluster and run, and the command names it alone."""
    theirs = _node(_network("staging", cidr="10.5")["subnets"][ZONES[0]], "staging", "workers")
    _ec2().create_tags(Resources=[theirs], Tags=[{"Key": activities.FAULT_TAG, "Value": "kubelet"},
                                                 {"Key": activities.CLUSTER_TAG, "Value": "staging"}])  # fmt: skip
    with cluster["clusters"].allowed.api() as api:
        k8s_client.CoreV1Api(api).delete_namespaced_pod(
            "subs-2", NAMESPACE
        )  # the service on node-a and node-b
    monkeypatch.setenv(activities.HARNESS_NODE_ENV, "node-a")
    config = cluster["config"]
    chosen = activities.stop_kubelet("app=subs", NAMESPACE, configuration=config)
    assert chosen == [cluster["instances"]["node-b"]]
    assert [c["InstanceIds"] for c in _commands()] == [chosen]
    assert _marks()[chosen[0]] == {activities.FAULT_TAG: "kubelet", activities.CLUSTER_TAG: "prod",
                                   activities.RUN_TAG: "run-1"}  # fmt: skip
    assert activities.stop_kubelet("app=subs", NAMESPACE, configuration=config) == chosen, (
        "a re-run reuses it"
    )
    assert activities.start_kubelet(configuration=config) == chosen
    assert set(_marks()) == {theirs}


# --- control plane ----------------------------------------------------------------------------------
def _etcd(cluster: dict[str, Any], members: list[str], healthy: list[str], leader: str) -> Any:
    """etcdctl's answers on the control plane: `member list` names `members`; `endpoint status
    --cluster` answers for the `healthy` ones, each naming `leader`."""
    ids = {name: i + 1 for i, name in enumerate(members)}

    def play(_instance: str, commands: list[str]) -> str:
        if not any("member list" in c for c in commands):
            return ""
        listing = {"members": [{"ID": ids[n], "name": n, "clientURLs": [f"https://{cluster['ips'][n]}:2379"]}
                               for n in members]}  # fmt: skip
        statuses = [{"Endpoint": f"https://{cluster['ips'][n]}:2379",
                     "Status": {"header": {"member_id": ids[n]}, "leader": ids[leader]}} for n in healthy]  # fmt: skip
        return f"{json.dumps(listing)}\n{activities.ETCD_SPLIT}\n{json.dumps(statuses)}\n"

    return play


def _control_plane(cluster: dict[str, Any], names: tuple[str, ...]) -> None:
    with cluster["clusters"].allowed.api() as api:
        core = k8s_client.CoreV1Api(api)
        for name in names:
            core.patch_node(name, {"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}})


@pytest.mark.parametrize(
    ("members", "healthy"),
    [
        (("node-a", "node-b"), ("node-a", "node-b")),
        (("node-a", "node-b", "node-c"), ("node-a", "node-b")),
        (("node-a",), ("node-a",)),
    ],
    ids=["two-members", "three-members-one-down", "one-member"],
)
def test_an_etcd_stop_that_would_lose_quorum_is_refused(
    cluster: dict[str, Any], ssm_shell: Any, members: tuple[str, ...], healthy: tuple[str, ...]
) -> None:
    """Stopping one member of these would leave fewer healthy members than quorum: refused with the
    count, and nothing parked or marked (the only command sent is the read-only etcdctl query)."""
    _control_plane(cluster, members)
    ssm_shell(_etcd(cluster, list(members), list(healthy), leader=healthy[0]))
    with pytest.raises(
        ActivityFailed, match=f"etcd has {len(members)} member\\(s\\), {len(healthy)} healthy"
    ):
        activities.park_static_pod("etcd", "follower", configuration=cluster["config"])
    assert all("member list" in c["Parameters"]["commands"][0] for c in _commands())
    assert _marks() == {}


def test_a_follower_of_a_healthy_three_member_etcd_is_stopped(
    cluster: dict[str, Any], ssm_shell: Any
) -> None:
    """Three healthy members keep quorum with one stopped: a follower (never the leader) is marked
    and its manifest parked; the undo moves it back."""
    _control_plane(cluster, NODES)
    ssm_shell(_etcd(cluster, list(NODES), list(NODES), leader="node-b"))
    result = activities.park_static_pod("etcd", "follower", configuration=cluster["config"])
    (chosen,) = result["instances"]
    assert chosen in {cluster["instances"]["node-a"], cluster["instances"]["node-c"]}
    assert _marks()[chosen][activities.FAULT_TAG] == "static-pod"
    parked = [
        c for c in _commands() if any("resilience-harness-parked" in x for x in c["Parameters"]["commands"])
    ]
    assert [c["InstanceIds"] for c in parked] == [[chosen]]
    assert activities.restore_static_pods(configuration=cluster["config"]) == [chosen]
    assert _marks() == {}


@pytest.mark.parametrize("serving", [1, 2])
def test_an_api_server_is_stopped_only_when_another_serves(cluster: dict[str, Any], serving: int) -> None:
    """The `default/kubernetes` Endpoints list the API servers that serve: with one, stopping it would
    be a full outage and is refused, nothing marked; with two, one is parked."""
    _control_plane(cluster, NODES[:2])
    with cluster["clusters"].allowed.api() as api:
        k8s_client.CoreV1Api(api).create_namespaced_endpoints("default", {
            "metadata": {"name": "kubernetes", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": cluster["ips"][n]} for n in NODES[:serving]],
                         "ports": [{"name": "https", "port": 6443}]}],
        })  # fmt: skip
    if serving == 1:
        with pytest.raises(ActivityFailed, match="refusing to stop kube-apiserver: 1 serve"):
            activities.park_static_pod("kube-apiserver", configuration=cluster["config"])
        assert _commands() == [] and _marks() == {}
    else:
        (chosen,) = activities.park_static_pod("kube-apiserver", configuration=cluster["config"])["instances"]
        assert chosen in {cluster["instances"][n] for n in NODES[:2]}


def test_etcd_view_counts_members_health_and_leader() -> None:
    """The parser behind the quorum check: members from `member list`, healthy = answering without errors."""
    members = {"members": [{"ID": 1}, {"ID": 2}, {"ID": 3}]}
    statuses = [
        {"Endpoint": "https://10.0.0.1:2379", "Status": {"header": {"member_id": 1}, "leader": 1}},
        {
            "Endpoint": "https://10.0.0.2:2379",
            "Status": {"header": {"member_id": 2}, "leader": 1, "errors": ["x"]},
        },
    ]
    view = activities.etcd_view(f"{json.dumps(members)}\n{activities.ETCD_SPLIT}\n{json.dumps(statuses)}")
    assert (view.members, view.healthy, view.leader_host, view.quorum) == (3, 1, "10.0.0.1", 2)
    assert view.stop_problem() is not None
    assert activities.EtcdView(members=3, healthy=3, leader_host=None).stop_problem() is None
    assert activities.EtcdView(members=5, healthy=4, leader_host=None).stop_problem() is None

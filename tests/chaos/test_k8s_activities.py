"""The pure parts of our Kubernetes and SSM activities: selectors, Chaos Mesh objects, etcd
leader lookup, node-to-instance mapping, and the static-pod shell run for real in a folder."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from chaoslib.exceptions import ActivityFailed

from harness.chaos.activities import aws, kubernetes


class TestLabelSelectorObject:
    @pytest.mark.parametrize(
        ("selector", "expected"),
        [
            ("app=subs", {"matchLabels": {"app": "subs"}}),
            ("app==subs,tier=web", {"matchLabels": {"app": "subs", "tier": "web"}}),
            (
                "app.kubernetes.io/name in (subs, api),env!=dev",
                {
                    "matchExpressions": [
                        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["subs", "api"]},
                        {"key": "env", "operator": "NotIn", "values": ["dev"]},
                    ]
                },
            ),
            (
                "app=subs,canary,!legacy",
                {
                    "matchLabels": {"app": "subs"},
                    "matchExpressions": [
                        {"key": "canary", "operator": "Exists"},
                        {"key": "legacy", "operator": "DoesNotExist"},
                    ],
                },
            ),
        ],
    )
    def test_kubectl_selectors_become_label_selectors(self, selector: str, expected: dict[str, Any]) -> None:
        """Equality, set-based, existence terms; commas inside parentheses do not split terms."""
        assert kubernetes.label_selector_object(selector) == expected

    @pytest.mark.parametrize("selector", ["", "  ", "app = (subs"])
    def test_empty_or_unreadable_selectors_are_refused(self, selector: str) -> None:
        """An empty selector would select every pod of the namespace."""
        with pytest.raises(ActivityFailed):
            kubernetes.label_selector_object(selector)


class TestNetworkChaosBody:
    def test_latency_on_a_share_of_the_pods(self) -> None:
        """A percentage below 100 is Chaos Mesh's fixed-percent mode with a string value."""
        body = kubernetes.network_chaos_body(
            "resilience-harness-latency", "delay", "app=subs", "shop", 90, 50, {"delay": {"latency": "200ms"}}
        )
        assert body["kind"] == "NetworkChaos" and body["apiVersion"] == "chaos-mesh.org/v1alpha1"
        assert body["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "resilience-harness"}
        spec = body["spec"]
        assert (spec["mode"], spec["value"], spec["duration"]) == ("fixed-percent", "50", "90s")
        assert spec["selector"] == {"namespaces": ["shop"], "labelSelectors": {"app": "subs"}}
        assert spec["delay"] == {"latency": "200ms"} and "target" not in spec

    def test_partition_names_the_other_side(self) -> None:
        """A partition targets the pods of target_label_selector, both directions."""
        body = kubernetes.network_chaos_body(
            "p",
            "partition",
            "app=subs",
            "shop",
            60,
            target_label_selector="app in (postgres)",
            direction="both",
        )
        spec = body["spec"]
        assert spec["mode"] == "all" and spec["direction"] == "both"
        assert spec["target"]["selector"]["expressionSelectors"] == [
            {"key": "app", "operator": "In", "values": ["postgres"]}
        ]


class TestEtcdLeader:
    def _status(self, leader: int) -> str:
        members = {1: "10.0.1.10", 2: "10.0.2.10", 3: "10.0.3.10"}
        return json.dumps(
            [
                {"Endpoint": f"https://{ip}:2379", "Status": {"header": {"member_id": mid}, "leader": leader}}
                for mid, ip in members.items()
            ]
        )

    def test_the_member_that_leads_itself_is_the_leader(self) -> None:
        """`etcdctl endpoint status --cluster -w json`: the leader's member_id equals its leader field."""
        assert aws.etcd_leader_host(self._status(2)) == "10.0.2.10"

    @pytest.mark.parametrize("output", ["", "Error: context deadline exceeded", "[]"])
    def test_no_leader_or_no_json_is_an_error(self, output: str) -> None:
        """A cluster without quorum, or etcdctl failing, must not pick a member at random."""
        with pytest.raises(ActivityFailed):
            aws.etcd_leader_host(output)


@pytest.mark.parametrize(
    ("provider_id", "expected"),
    [
        ("aws:///us-east-1a/i-0123456789abcdef0", "i-0123456789abcdef0"),
        ("aws:///us-east-1a/i-0123456789abcdef0/", "i-0123456789abcdef0"),
        ("kind://docker/kind/kind-worker", None),
        (None, None),
    ],
)
def test_instance_id_from_provider_id(provider_id: str | None, expected: str | None) -> None:
    """The AWS cloud provider's provider id names the instance; other providers do not."""
    assert aws.instance_id_from_provider_id(provider_id) == expected


class TestStaticPodShell:
    """The shell SSM runs on control-plane hosts, run here on a folder standing for /etc/kubernetes."""

    def _run(self, commands: list[str]) -> None:
        subprocess.run(["sh", "-ec", "\n".join(commands)], check=True, timeout=10)

    def test_park_and_restore_are_idempotent(self, tmp_path: Path) -> None:
        """Park twice, restore twice: the manifest is back, unchanged, and nothing else moved."""
        manifests, parked = tmp_path / "manifests", tmp_path / "parked"
        manifests.mkdir()
        (manifests / "etcd.yaml").write_text("kind: Pod # etcd\n")
        (manifests / "kube-apiserver.yaml").write_text("kind: Pod # apiserver\n")
        park = aws.park_commands("etcd", str(manifests), str(parked))
        self._run(park)
        self._run(park)
        assert sorted(p.name for p in manifests.iterdir()) == ["kube-apiserver.yaml"]
        assert (parked / "etcd.yaml").read_text() == "kind: Pod # etcd\n"
        restore = aws.restore_commands(str(manifests), str(parked))
        self._run(restore)
        self._run(restore)
        assert (manifests / "etcd.yaml").read_text() == "kind: Pod # etcd\n"
        assert list(parked.iterdir()) == []

    def test_restore_never_overwrites_a_manifest_that_is_back(self, tmp_path: Path) -> None:
        """If someone already put a (newer) manifest back, the parked copy does not replace it."""
        manifests, parked = tmp_path / "manifests", tmp_path / "parked"
        manifests.mkdir()
        parked.mkdir()
        (parked / "etcd.yaml").write_text("old\n")
        (manifests / "etcd.yaml").write_text("new\n")
        self._run(aws.restore_commands(str(manifests), str(parked)))
        assert (manifests / "etcd.yaml").read_text() == "new\n"

    def test_restore_without_anything_parked_succeeds(self, tmp_path: Path) -> None:
        """A rollback whose action never ran: no parked folder at all."""
        (tmp_path / "manifests").mkdir()
        self._run(aws.restore_commands(str(tmp_path / "manifests"), str(tmp_path / "parked")))

"""deploy/: every kustomization renders, every object is valid Kubernetes, and the parts fit.

Rendered with the real kustomize (`kubectl kustomize`) where it is installed, else with
tests/deploy/kustomize.py (tests/deploy/rendering.py; the run's summary says which), and
checked with kubernetes-validate's strict schemas (unknown fields are errors) for the oldest and newest versions we target. Then
what a user would find out only on a cluster: selectors that match nothing, probes on paths the
service does not serve, flags the CLI does not know, RBAC bound to nobody or to everything.
"""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from fastapi.testclient import TestClient
from kubernetes_validate import utils as kv

from harness import cli
from harness.app.api import create_app
from harness.app.server import prepare_database
from harness.app.settings import AppSettings
from harness.plan import loading
from tests.deploy.kustomize import object_id, pod_spec, pod_template, split_image
from tests.deploy.rendering import render

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = [
    "base",
    "locust",
    "gameday",
    "gameday/kube-system",
    "overlays/eks",
    "overlays/self-managed",
]
OVERLAYS = ["overlays/eks", "overlays/self-managed"]
KUBERNETES_VERSIONS = ["1.29", "1.37"]
"""The oldest minor still in EKS extended support when this was written, and the newest
schemas kubernetes-validate ships."""

type Obj = dict[str, Any]


@pytest.fixture(scope="module", params=KUSTOMIZATIONS)
def rendered(request: pytest.FixtureRequest) -> list[Obj]:
    return render(DEPLOY / request.param)


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> list[Obj]:
    return render(DEPLOY / request.param)


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    hits = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def containers(obj: Obj) -> list[Obj]:
    spec = pod_spec(obj)
    return [] if spec is None else [*spec.get("initContainers", []), *spec.get("containers", [])]


def subcommand(*names: str) -> Any:
    """A command of the `harness` CLI as Typer builds it (its own click), e.g. ("app", "serve")."""
    command: Any = typer.main.get_command(cli.app)
    for name in names:
        command = command.commands[name]
    return command


def expand(args: list[str], values: dict[str, str]) -> list[str]:
    """Kubernetes' $(VAR) expansion in command and args."""
    return [re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], arg) for arg in args]


class TestRendering:
    def test_every_object_is_valid_kubernetes(self, rendered: list[Obj]) -> None:
        """Each rendered object passes the strict schema of every targeted Kubernetes version."""
        assert rendered
        for obj in rendered:
            for version in KUBERNETES_VERSIONS:
                try:
                    kv.validate(obj, version, strict=True)
                except kv.ValidationError as exc:
                    where = ".".join(str(p) for p in exc.path)
                    pytest.fail(f"{object_id(obj)} on {version}: {where}: {exc.message}")

    def test_overlays_hold_every_part(self, overlay: list[Obj]) -> None:
        """An overlay deploys the service, the Locust master and workers and the game day."""
        for kind, name in [
            ("Namespace", "subs"),
            ("Deployment", "subs"),
            ("Service", "subs"),
            ("PodDisruptionBudget", "subs"),
            ("Service", "harness-locust"),
            ("Deployment", "locust-worker"),
            ("CronJob", "harness-gameday"),
            ("Role", "harness-gameday-coredns"),
        ]:
            find(overlay, kind, name)

    def test_namespaced_objects_land_in_known_namespaces(self, overlay: list[Obj]) -> None:
        """Everything is in the overlay's own namespace, but for the one Role in kube-system."""
        created = {o["metadata"]["name"] for o in overlay if o["kind"] == "Namespace"}
        for obj in overlay:
            namespace = obj["metadata"].get("namespace")
            if obj["kind"] in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
                assert namespace is None, object_id(obj)
            elif namespace == "kube-system":
                assert obj["kind"] in ("Role", "RoleBinding"), object_id(obj)
            else:
                assert namespace in created, object_id(obj)

    def test_eks_overlay_annotates_the_gameday_service_account(self) -> None:
        """IRSA: the game day's ServiceAccount names an IAM role, the service's does not."""
        objects = render(DEPLOY / "overlays/eks")
        gameday = find(objects, "ServiceAccount", "harness-gameday")
        assert gameday["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith("arn:aws:iam::")
        assert "annotations" not in find(objects, "ServiceAccount", "subs")["metadata"]

    def test_eks_overlay_makes_the_zone_spread_strict(self) -> None:
        """On EKS the zone constraint is DoNotSchedule; the hostname one is kept from base."""
        spec = pod_spec(find(render(DEPLOY / "overlays/eks"), "Deployment", "subs"))
        assert spec is not None
        keys = [c["topologyKey"] for c in spec["topologySpreadConstraints"]]
        assert sorted(keys) == ["kubernetes.io/hostname", "topology.kubernetes.io/zone"], (
            "one constraint per key: base's soft zone spread is replaced, not kept beside the strict one"
        )
        by_key = {c["topologyKey"]: c for c in spec["topologySpreadConstraints"]}
        assert by_key["topology.kubernetes.io/zone"]["whenUnsatisfiable"] == "DoNotSchedule"
        assert by_key["topology.kubernetes.io/zone"]["nodeTaintsPolicy"] == "Honor"
        assert by_key["kubernetes.io/hostname"]["whenUnsatisfiable"] == "ScheduleAnyway"

    def test_overlays_pull_the_image_from_their_registry(self, overlay: list[Obj]) -> None:
        """The images transformer renames the harness image in every container that uses it."""
        names = {split_image(c["image"])[0] for o in overlay for c in containers(o)}
        assert "resilience-harness" not in names
        assert any(name.endswith("/resilience-harness") for name in names)


class TestWorkloads:
    def test_selectors_match_their_pod_templates(self, rendered: list[Obj]) -> None:
        """A workload's selector selects its own template's labels (else the API refuses it)."""
        for obj in rendered:
            if obj["kind"] in ("Deployment", "StatefulSet"):
                template = pod_template(obj)
                assert template is not None
                selector = obj["spec"]["selector"]["matchLabels"]
                assert selects(selector, template["metadata"]["labels"]), object_id(obj)

    def test_services_select_exactly_one_workload_and_its_ports(self, overlay: list[Obj]) -> None:
        """Each Service selects the pods of one workload, on a named port those pods declare.

        Over whole overlays: Service harness-locust (deploy/locust) selects the game day's pods,
        of whichever game-day CronJob runs (they are scheduled apart and never overlap)."""
        workloads = [o for o in overlay if pod_template(o) is not None]
        for service in (o for o in overlay if o["kind"] == "Service"):
            selector = service["spec"]["selector"]
            hits = [w for w in workloads if selects(selector, pod_template(w)["metadata"]["labels"])]
            if hits and all(h["kind"] == "CronJob" for h in hits):
                assert all(h["spec"]["concurrencyPolicy"] == "Forbid" for h in hits), object_id(service)
            else:
                assert len(hits) == 1, f"{object_id(service)} selects {[object_id(h) for h in hits]}"
            for hit in hits:
                ports = {p["name"] for c in containers(hit) for p in c.get("ports", [])}
                for port in service["spec"]["ports"]:
                    assert port["targetPort"] in ports, (object_id(service), object_id(hit), port)

    def test_subs_service_serves_port_80(self) -> None:
        """The plans' load.host, http://subs.subs.svc.cluster.local, is port 80 of Service subs."""
        service = find(render(DEPLOY / "base"), "Service", "subs")
        assert service["metadata"]["namespace"] == "subs"
        assert service["spec"]["type"] == "ClusterIP"
        assert [p["port"] for p in service["spec"]["ports"]] == [80]

    def test_disruption_budget_selects_the_replicas_and_leaves_room(self) -> None:
        """The PDB covers the service's pods and allows one disruption at a time."""
        objects = render(DEPLOY / "base")
        deployment = find(objects, "Deployment", "subs")
        pdb = find(objects, "PodDisruptionBudget", "subs")
        labels = pod_template(deployment)["metadata"]["labels"]
        assert selects(pdb["spec"]["selector"]["matchLabels"], labels)
        assert labels["app"] == "subs", "plans select app=subs"
        assert 0 < pdb["spec"]["minAvailable"] < deployment["spec"]["replicas"]

    def test_replicas_spread_over_zones(self) -> None:
        """Three replicas, spread on topology.kubernetes.io/zone with a skew of one."""
        deployment = find(render(DEPLOY / "base"), "Deployment", "subs")
        assert deployment["spec"]["replicas"] == 3
        zone = [
            c
            for c in pod_spec(deployment)["topologySpreadConstraints"]
            if c["topologyKey"] == "topology.kubernetes.io/zone"
        ]
        assert len(zone) == 1 and zone[0]["maxSkew"] == 1
        assert selects(
            zone[0]["labelSelector"]["matchLabels"], pod_template(deployment)["metadata"]["labels"]
        )

    def test_service_pods_can_be_drained(self) -> None:
        """No emptyDir or hostPath: chaosk8s's drain skips pods with local storage unless told
        to delete it, so node-drain would silently leave such pods where they are."""
        spec = pod_spec(find(render(DEPLOY / "base"), "Deployment", "subs"))
        for volume in spec.get("volumes", []):
            assert "emptyDir" not in volume and "hostPath" not in volume, volume["name"]

    def test_shutdown_drains_before_the_kill(self) -> None:
        """preStop sleep plus the server's graceful window fit in the termination grace period."""
        from harness.app.server import GRACEFUL_S

        spec = pod_spec(find(render(DEPLOY / "base"), "Deployment", "subs"))
        (container,) = spec["containers"]
        command = container["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        assert int(command[1]) + GRACEFUL_S < spec["terminationGracePeriodSeconds"]

    def test_locust_workers_spread_over_nodes(self) -> None:
        """Workers prefer nodes without another worker."""
        workers = find(render(DEPLOY / "locust"), "Deployment", "locust-worker")
        terms = pod_spec(workers)["affinity"]["podAntiAffinity"][
            "preferredDuringSchedulingIgnoredDuringExecution"
        ]
        own = pod_template(workers)["metadata"]["labels"]
        assert any(
            t["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
            and selects(t["podAffinityTerm"]["labelSelector"]["matchLabels"], own)
            for t in terms
        )

    def test_locust_workers_join_the_harness_master(self, overlay: list[Obj]) -> None:
        """Workers run `harness load worker` (a command harness accepts) against Service
        harness-locust, which reaches the game-day pod's Locust master port."""
        (worker,) = pod_spec(find(overlay, "Deployment", "locust-worker"))["containers"]
        assert worker["command"] == ["harness", "load", "worker"]
        ctx = subcommand("load", "worker").make_context("worker", list(worker["args"]))
        assert (ROOT / ctx.params["locustfile"]).is_file()
        host, port = ctx.params["master"].split(":")
        service = find(overlay, "Service", host)
        (service_port,) = service["spec"]["ports"]
        assert service_port["port"] == int(port)
        gameday = find(overlay, "CronJob", "harness-gameday")
        assert selects(service["spec"]["selector"], pod_template(gameday)["metadata"]["labels"])
        (harness,) = pod_spec(gameday)["containers"]
        declared = {p["name"]: p["containerPort"] for p in harness["ports"]}
        assert declared[service_port["targetPort"]] == 5557, "load.workers.bind's default port"


@pytest.fixture(scope="module")
def container() -> Obj:
    """The reference service's container, as base renders it."""
    (only,) = pod_spec(find(render(DEPLOY / "base"), "Deployment", "subs"))["containers"]
    return only


@pytest.fixture(scope="module")
def objects() -> list[Obj]:
    """The EKS overlay: every part, with the game day's IRSA annotation."""
    return render(DEPLOY / "overlays/eks")


class TestReferenceService:
    def test_probes_hit_paths_the_service_serves(self, container: Obj, tmp_path_factory) -> None:
        """The readiness and liveness paths answer 200 from the real app, on the named port."""
        settings = AppSettings(db=f"sqlite:///{tmp_path_factory.mktemp('db') / 'subs.db'}")
        prepare_database(settings)
        ports = {p["name"] for p in container["ports"]}
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        with TestClient(create_app(settings)) as client:
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                get = container[probe]["httpGet"]
                assert get["port"] in ports, probe
                assert client.get(get["path"]).status_code == 200, probe

    def test_command_line_is_one_harness_accepts(self, container: Obj) -> None:
        """`harness app serve` parses the args, with the DSN expanded from the environment."""
        assert container["command"] == ["harness", "app", "serve"]
        args = expand(container["args"], {"HARNESS_DB": "postgresql://subs@postgres:5432/subs"})
        ctx = subcommand("app", "serve").make_context("serve", args)
        assert ctx.params["db"].startswith("postgresql://")
        assert ctx.params["host"] == "0.0.0.0"
        assert ctx.params["port"] in {p["containerPort"] for p in container["ports"]}

    def test_environment_is_what_the_service_reads(self, container: Obj) -> None:
        """Every env var is an env setting of `harness app serve` or expanded into its args."""
        read = {opt.envvar for opt in subcommand("app", "serve").params if getattr(opt, "envvar", None)}
        expanded = {m for arg in container["args"] for m in re.findall(r"\$\((\w+)\)", arg)}
        for env in container["env"]:
            assert env["name"] in read | expanded, env["name"]
        assert expanded <= {env["name"] for env in container["env"]}

    def test_database_dsn_comes_from_the_secret(self, container: Obj) -> None:
        """The DSN is a secretKeyRef to a generated Secret with a placeholder password."""
        objects = render(DEPLOY / "base")
        (dsn,) = [e for e in container["env"] if e["name"] == "HARNESS_DB"]
        ref = dsn["valueFrom"]["secretKeyRef"]
        secret = find(objects, "Secret", ref["name"])
        value = base64.b64decode(secret["data"][ref["key"]]).decode()
        AppSettings(db=value)  # a DSN the service accepts
        assert "CHANGE-ME" in value, "the committed example must not hold a real password"


def cronjobs(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] == "CronJob"]


def run_params(cronjob: Obj) -> dict[str, Any]:
    """The `harness run` parameters a CronJob's container gives, $(VAR)s expanded from its env."""
    (container,) = pod_spec(cronjob)["containers"]
    env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
    command = expand(container["command"], env)
    assert command[:2] == ["harness", "run"]
    return subcommand("run").make_context("run", command[2:]).params


class TestGameday:
    def test_cronjobs_run_a_mounted_plan(self, overlay: list[Obj]) -> None:
        """`harness run` gets a plan file that the mounted ConfigMap holds, and a reports volume."""
        assert cronjobs(overlay)
        for cronjob in cronjobs(overlay):
            spec = pod_spec(cronjob)
            (container,) = spec["containers"]
            params = run_params(cronjob)
            plan_path = Path(params["plan"])
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            volumes = {v["name"]: v for v in spec["volumes"]}
            plan_volume = volumes[mounts[str(plan_path.parent)]]
            configmap = find(overlay, "ConfigMap", plan_volume["configMap"]["name"])
            assert plan_path.name in configmap["data"], object_id(cronjob)
            reports = volumes[mounts[str(params["reports"])]]
            find(overlay, "PersistentVolumeClaim", reports["persistentVolumeClaim"]["claimName"])

    def test_every_overlay_names_its_cluster(self, overlay: list[Obj]) -> None:
        """--cluster=$(HARNESS_CLUSTER) expands to a name the harness accepts, in every CronJob."""
        for cronjob in cronjobs(overlay):
            cluster = run_params(cronjob)["cluster"]
            assert cluster and "$(" not in cluster, object_id(cronjob)
            loading.load_plan(ROOT / "experiments/plans/cluster-benchmark.yaml").with_cluster(cluster)

    def test_both_overlays_compare_the_same_plan_under_two_names(self) -> None:
        """The weekly comparison runs one plan everywhere; each cluster has its own history key."""
        runs = {}
        for path in OVERLAYS:
            objects = render(DEPLOY / path)
            params = run_params(find(objects, "CronJob", "harness-gameday"))
            volume = next(
                v
                for v in pod_spec(find(objects, "CronJob", "harness-gameday"))["volumes"]
                if v["name"] == "plan"
            )
            text = find(objects, "ConfigMap", volume["configMap"]["name"])["data"][Path(params["plan"]).name]
            runs[path] = (text, params["cluster"])
        (texts, names) = zip(*runs.values(), strict=True)
        assert len(set(texts)) == 1, "the same plan text in both overlays"
        assert len(set(names)) == len(OVERLAYS), f"one history key per cluster, got {names}"
        assert texts[0] == (ROOT / "experiments/plans/cluster-benchmark.yaml").read_text()

    def test_gameday_pods_know_where_they_run(self, overlay: list[Obj]) -> None:
        """HARNESS_NODE_NAME, HARNESS_POD_NAME and HARNESS_POD_NAMESPACE from the downward API:
        the chaos activities read them to leave the harness's own node and pod alone."""
        wanted = {
            "HARNESS_NODE_NAME": "spec.nodeName",
            "HARNESS_POD_NAME": "metadata.name",
            "HARNESS_POD_NAMESPACE": "metadata.namespace",
        }
        for cronjob in cronjobs(overlay):
            (container,) = pod_spec(cronjob)["containers"]
            given = {
                e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"]
                for e in container["env"]
                if "fieldRef" in e.get("valueFrom", {})
            }
            assert given == wanted, object_id(cronjob)

    def test_eks_aws_gameday_runs_outside_the_blackholed_zone(self, objects: list[Obj]) -> None:
        """On EKS the AWS game day keeps out of the zone that az-blackhole-nacl cuts off."""
        cronjob = find(objects, "CronJob", "harness-gameday-aws")
        params = run_params(cronjob)
        configmap = find(objects, "ConfigMap", "gameday-plans")
        plan_file = Path(params["plan"]).name
        plan = loading.load_plan(ROOT / "experiments/plans" / plan_file)
        assert configmap["data"][plan_file] == (ROOT / "experiments/plans" / plan_file).read_text()
        (blackhole,) = [s for s in plan.scenarios if Path(s.experiment).name == "az-blackhole-nacl.yaml"]
        spec = pod_spec(cronjob)
        terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        (expression,) = terms["nodeSelectorTerms"][0]["matchExpressions"]
        assert expression["key"] == "topology.kubernetes.io/zone"
        assert expression["operator"] == "NotIn"
        assert expression["values"] == [blackhole.vars["availability_zone"]]

    def test_eks_aws_gameday_is_the_comparison_pod_but_for_its_plan(self, objects: list[Obj]) -> None:
        """The second CronJob is a copy: it may differ only in plan, schedule, deadline and zone."""
        main, aws = (
            find(objects, "CronJob", "harness-gameday"),
            find(objects, "CronJob", "harness-gameday-aws"),
        )

        def comparable(cronjob: Obj) -> Obj:
            spec = copy.deepcopy(cronjob["spec"])
            spec.pop("schedule")
            spec["jobTemplate"]["spec"].pop("activeDeadlineSeconds")
            pod = spec["jobTemplate"]["spec"]["template"]["spec"]
            pod.pop("affinity", None)
            (container,) = pod["containers"]
            container.pop("command")
            container["env"].sort(key=lambda e: e["name"])
            return spec

        assert comparable(main) == comparable(aws)
        assert run_params(main)["cluster"] == run_params(aws)["cluster"], "one cluster, one name"
        assert main["spec"]["schedule"].split()[4] != aws["spec"]["schedule"].split()[4], (
            "not on the same day"
        )

    def test_cronjob_never_overlaps_or_retries(self, overlay: list[Obj]) -> None:
        """Forbid concurrency, bounded runs, no retry that would inject the faults again."""
        for cronjob in cronjobs(overlay):
            spec = cronjob["spec"]
            assert spec["concurrencyPolicy"] == "Forbid"
            assert spec["startingDeadlineSeconds"] > 0
            assert spec["successfulJobsHistoryLimit"] >= 1 and spec["failedJobsHistoryLimit"] >= 1
            assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0
            assert spec["jobTemplate"]["spec"]["activeDeadlineSeconds"] > 0

    def test_service_account_is_bound_to_its_roles(self, objects: list[Obj]) -> None:
        """The CronJob's ServiceAccount exists, and every binding to it names an existing role."""
        cronjob = find(objects, "CronJob", "harness-gameday")
        account = find(objects, "ServiceAccount", pod_spec(cronjob)["serviceAccountName"])
        namespace = account["metadata"]["namespace"]
        assert namespace == cronjob["metadata"]["namespace"]
        bound = []
        for binding in (o for o in objects if o["kind"] in ("RoleBinding", "ClusterRoleBinding")):
            subjects = {(s["kind"], s["name"], s.get("namespace")) for s in binding["subjects"]}
            if ("ServiceAccount", account["metadata"]["name"], namespace) not in subjects:
                continue
            ref = binding["roleRef"]
            role = find(objects, ref["kind"], ref["name"])
            if ref["kind"] == "Role":
                assert role["metadata"]["namespace"] == binding["metadata"]["namespace"]
            bound.append((ref["kind"], ref["name"], binding["metadata"].get("namespace")))
        assert sorted(bound) == [
            ("ClusterRole", "harness-gameday", None),
            ("Role", "harness-gameday", "subs"),
            ("Role", "harness-gameday-coredns", "kube-system"),
        ]

    def test_rbac_grants_what_the_experiments_call(self, objects: list[Obj]) -> None:
        """The verbs chaosk8s' actions use are granted, where they are used."""

        def allowed(kind: str, name: str, group: str, resource: str, verb: str) -> bool:
            return any(
                group in r.get("apiGroups", []) and resource in r.get("resources", []) and verb in r["verbs"]
                for r in find(objects, kind, name)["rules"]
            )

        namespaced = [
            ("", "pods", "list"),  # terminate_pods, pods_in_conditions, apiserver_load
            ("", "pods", "delete"),  # terminate_pods
            ("discovery.k8s.io", "endpointslices", "list"),  # service_answers
            ("apps", "deployments", "list"),  # deployment_available_and_healthy
            ("apps", "deployments", "get"),  # wait_for_deployment, scale_deployment_recording
            ("apps", "deployments", "patch"),
            ("networking.k8s.io", "networkpolicies", "create"),  # deny_pod_traffic
            ("networking.k8s.io", "networkpolicies", "update"),
            ("networking.k8s.io", "networkpolicies", "get"),  # allow_pod_traffic
            ("networking.k8s.io", "networkpolicies", "delete"),
            ("chaos-mesh.org", "networkchaos", "create"),  # start/stop_network_chaos
            ("chaos-mesh.org", "networkchaos", "delete"),
            ("networking.k8s.io", "networkpolicies", "list"),  # the target's heal
            ("chaos-mesh.org", "networkchaos", "list"),
            ("", "events", "list"),  # the target's ground truth
            ("", "serviceaccounts", "get"),  # the control-plane sampler
        ]
        for grant in namespaced:
            assert allowed("Role", "harness-gameday", *grant), grant
        cluster = [
            ("", "nodes", "list"),  # drain_nodes: select, cordon
            ("", "nodes", "patch"),
            ("", "pods", "list"),  # list_pod_for_all_namespaces(spec.nodeName=...)
            ("", "pods", "get"),
            ("", "pods/eviction", "create"),
        ]
        for grant in cluster:
            assert allowed("ClusterRole", "harness-gameday", *grant), grant
        for verb in ("get", "patch"):  # dns-disruption: scale CoreDNS down and back
            assert allowed("Role", "harness-gameday-coredns", "apps", "deployments", verb)
        urls = [r for r in find(objects, "ClusterRole", "harness-gameday")["rules"] if "nonResourceURLs" in r]
        assert {u for r in urls for u in r["nonResourceURLs"]} == {"/readyz", "/livez", "/version"}

    def test_rbac_has_no_wildcards_and_no_escalation(self, objects: list[Obj]) -> None:
        """No `*`, no secrets, no verbs that grant more RBAC or another identity."""
        for role in (o for o in objects if o["kind"] in ("Role", "ClusterRole")):
            for rule in role["rules"]:
                for field in ("verbs", "resources", "apiGroups", "nonResourceURLs", "resourceNames"):
                    assert not any("*" in item for item in rule.get(field, [])), (object_id(role), rule)
                assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), (object_id(role), rule)
                assert "secrets" not in rule.get("resources", []), (object_id(role), rule)

    def test_kube_system_access_is_coredns_only(self, objects: list[Obj]) -> None:
        """In kube-system, only the coredns Deployment, by name."""
        role = find(objects, "Role", "harness-gameday-coredns")
        assert role["metadata"]["namespace"] == "kube-system"
        for rule in role["rules"]:
            assert rule["resources"] == ["deployments"] and rule["resourceNames"] == ["coredns"]


class TestContainers:
    def test_images_are_pinned(self, rendered: list[Obj]) -> None:
        """Every image has a tag or digest, and the tag is not `latest`."""
        for obj in rendered:
            for container in containers(obj):
                _, tag, digest = split_image(container["image"])
                assert tag or digest, (object_id(obj), container["image"])
                assert tag != "latest", (object_id(obj), container["image"])

    def test_every_container_has_resources(self, rendered: list[Obj]) -> None:
        """CPU and memory requests, and a memory limit, on every container."""
        for obj in rendered:
            for container in containers(obj):
                resources = container.get("resources", {})
                assert {"cpu", "memory"} <= set(resources.get("requests", {})), object_id(obj)
                assert "memory" in resources.get("limits", {}), object_id(obj)

    def test_every_pod_is_locked_down(self, rendered: list[Obj]) -> None:
        """Non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp."""
        for obj in rendered:
            spec = pod_spec(obj)
            if spec is None:
                continue
            pod = spec.get("securityContext", {})
            for container in containers(obj):
                own = container.get("securityContext", {})
                where = (object_id(obj), container["name"])
                assert own.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
                assert own.get("runAsUser", pod.get("runAsUser", 1)) != 0, where
                assert own.get("allowPrivilegeEscalation") is False, where
                assert own.get("readOnlyRootFilesystem") is True, where
                assert own.get("capabilities", {}).get("drop") == ["ALL"], where
                assert not own.get("capabilities", {}).get("add"), where
                seccomp = own.get("seccompProfile", pod.get("seccompProfile", {}))
                assert seccomp.get("type") == "RuntimeDefault", where

    def test_references_resolve(self, overlay: list[Obj]) -> None:
        """Mounted volumes exist; ConfigMaps, Secrets and claims they name are in the overlay."""
        names = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in overlay}
        for obj in overlay:
            spec = pod_spec(obj)
            if spec is None:
                continue
            namespace = obj["metadata"]["namespace"]
            claim_templates = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            for container in containers(obj):
                for mount in container.get("volumeMounts", []):
                    assert mount["name"] in volumes or mount["name"] in claim_templates, mount
                for env in container.get("env", []):
                    ref = env.get("valueFrom", {}).get("secretKeyRef")
                    if ref and not ref.get("optional"):
                        assert ("Secret", namespace, ref["name"]) in names, ref
            for volume in volumes.values():
                if "configMap" in volume:
                    assert ("ConfigMap", namespace, volume["configMap"]["name"]) in names
                if "persistentVolumeClaim" in volume:
                    claim = volume["persistentVolumeClaim"]["claimName"]
                    assert ("PersistentVolumeClaim", namespace, claim) in names


class TestPostgresComponent:
    def test_postgres_is_one_replica_on_a_claim_behind_a_headless_service(self) -> None:
        """The component's StatefulSet, its headless Service and the DSN's host agree."""
        objects = render(DEPLOY / "overlays/self-managed")
        statefulset = find(objects, "StatefulSet", "postgres")
        service = find(objects, "Service", "postgres")
        assert statefulset["spec"]["replicas"] == 1
        assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
        assert service["spec"]["clusterIP"] == "None"
        assert statefulset["spec"]["volumeClaimTemplates"]
        (container,) = pod_spec(statefulset)["containers"]
        assert split_image(container["image"])[0] == "postgres"
        assert "pg_isready" in " ".join(container["readinessProbe"]["exec"]["command"])
        dsn = base64.b64decode(find(objects, "Secret", "subs-db")["data"]["dsn"]).decode()
        namespace = service["metadata"]["namespace"]
        assert f"@{service['metadata']['name']}.{namespace}.svc.cluster.local:5432/" in dsn

    def test_postgres_is_not_selected_as_the_service(self) -> None:
        """Experiments aimed at app=subs never hit the database."""
        statefulset = find(render(DEPLOY / "overlays/self-managed"), "StatefulSet", "postgres")
        assert pod_template(statefulset)["metadata"]["labels"].get("app") != "subs"


def test_readme_names_every_kustomization() -> None:
    """deploy/README.md documents each part the tests render."""
    text = (DEPLOY / "README.md").read_text()
    for path in [*KUSTOMIZATIONS, "components/postgres"]:
        assert f"deploy/{path}" in text, path

"""`harness run --dry-run`: what every scenario's experiment would touch, without touching it.

For each method and rollback activity: the call with its arguments after chaoslib's own
`${...}` substitution (the target's configuration, then the scenario's vars, as the engine
passes them), and what it would act on, found with reads only — pods by label selector and
name pattern (with their nodes), nodes by name, label or the pods they host, a deployment by
name or label, the pods a network policy would select, EC2 instances and ASGs through boto3
`describe_*` calls. The catalog's own activities (harness.chaos.activities.kubernetes and .aws)
are resolved the way they select: the nodes a cordon would pick (and the pods a drain would
evict), what a rollback would find to undo (our label, annotation, policy, NetworkChaos, tags,
blackhole ACL), the instances an SSM fault would reach, the subnets a zone blackhole would
move, an FIS template's actions and targets. Anything else is listed as "unknown: would call MODULE.FUNC(args)": the
dry run says what it cannot resolve rather than guess.

Reads go through `client.connect`, so the allowed-context check holds here too. Secrets are
not loaded (they may live in Vault); a `${...}` that only a secret could fill stays as written.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml
from chaoslib import substitute
from chaoslib.configuration import load_configuration
from kubernetes import client as k8s_client

from harness import redaction
from harness.chaos import experiment as chaos_experiment
from harness.chaos.activities import aws as aws_activities
from harness.chaos.activities import kubernetes as k8s_activities
from harness.errors import HarnessError
from harness.kubernetes import client, selectors
from harness.kubernetes.target import KubernetesTarget

TIMEOUT = (5.0, 15.0)
Resolver = Callable[["_Context", dict[str, Any]], dict[str, Any]]


class _Context:
    """What resolvers need: the read-only clients and the configuration."""

    def __init__(
        self,
        connection: client.Connection | None,
        configuration: Mapping[str, Any],
        secrets: set[str] | None = None,
    ) -> None:
        self.connection = connection
        self.configuration = configuration
        self.secrets = secrets or set()  # masked wherever the dry run shows them (harness.redaction)

    @property
    def core(self) -> k8s_client.CoreV1Api:
        if self.connection is None:
            raise LookupError("no Kubernetes target to read from")
        return k8s_client.CoreV1Api(self.connection.api)

    @property
    def apps(self) -> k8s_client.AppsV1Api:
        if self.connection is None:
            raise LookupError("no Kubernetes target to read from")
        return k8s_client.AppsV1Api(self.connection.api)

    @property
    def networking(self) -> k8s_client.NetworkingV1Api:
        if self.connection is None:
            raise LookupError("no Kubernetes target to read from")
        return k8s_client.NetworkingV1Api(self.connection.api)

    @property
    def custom(self) -> k8s_client.CustomObjectsApi:
        if self.connection is None:
            raise LookupError("no Kubernetes target to read from")
        return k8s_client.CustomObjectsApi(self.connection.api)

    def boto(self, service: str) -> Any:
        import boto3  # only when an AWS activity is in the plan

        session = boto3.Session(
            profile_name=self.configuration.get("aws_profile_name"),
            region_name=self.configuration.get("aws_region"),
        )
        return session.client(service)


def dry_run(plan: Any, connection: client.Connection | None = None) -> list[dict[str, Any]]:
    """One entry per method/rollback activity of every scenario (see the module docstring)."""
    k8s = getattr(plan.target, "kind", None) == "kubernetes"
    target_config = KubernetesTarget(plan.target, url=plan.load.host).configuration() if k8s else {}
    own = connection is None and k8s
    if own:
        connection = client.connect(plan.target)
    try:
        out: list[dict[str, Any]] = []
        for scenario in plan.scenarios:
            experiment = chaos_experiment.load(Path(scenario.experiment))
            variables = {**target_config, **dict(scenario.vars)}
            secrets = redaction.experiment_secrets(experiment) | redaction.named(variables)
            configuration = load_configuration(
                {**variables, **(experiment.get("configuration") or {})}, extra_vars=variables
            )
            ctx = _Context(connection, configuration, secrets)
            refused = None
            if connection is not None:
                try:
                    client.check_experiment_secrets(experiment, connection.context, str(scenario.experiment))
                except HarnessError as exc:
                    refused = redaction.text(exc, secrets)
            for section in ("method", "rollbacks"):
                for activity in experiment.get(section) or []:
                    activity = _dereference(activity, experiment)
                    entry = _entry(ctx, activity, configuration)
                    entry.update(scenario=scenario.name, experiment=str(scenario.experiment), section=section)
                    if refused:
                        entry["refused"] = refused
                    out.append(entry)
        return out
    finally:
        if own and connection is not None:
            connection.close()


def _dereference(activity: dict[str, Any], experiment: Mapping[str, Any]) -> dict[str, Any]:
    """An activity given as `{"ref": name}` is the earlier activity of that name."""
    if "ref" not in activity:
        return activity
    pool = [
        *((experiment.get("steady-state-hypothesis") or {}).get("probes") or []),
        *(experiment.get("method") or []),
    ]
    return next((a for a in pool if a.get("name") == activity["ref"] and "ref" not in a), activity)


def _entry(ctx: _Context, activity: Mapping[str, Any], configuration: Mapping[str, Any]) -> dict[str, Any]:
    provider = activity.get("provider") or {}
    kind = provider.get("type")
    entry: dict[str, Any] = {"name": activity.get("name"), "type": activity.get("type"),
                             "call": None, "arguments": None, "touches": [], "selection": None,
                             "unknown": None}  # fmt: skip
    if kind != "python":
        target = provider.get("path") or provider.get("url") or "?"
        arguments = redaction.scrub(provider.get("arguments") or "", ctx.secrets)
        text = f"unknown: would run a {kind} provider: {target} {arguments}".strip()
        entry["unknown"] = redaction.text(text, ctx.secrets)
        return entry
    call = f"{provider.get('module')}.{provider.get('func')}"
    arguments = substitute(dict(provider.get("arguments") or {}), dict(configuration), {})
    shown = redaction.scrub(arguments, ctx.secrets)  # the resolvers get the real values, the user sees these
    entry["call"], entry["arguments"] = call, shown
    if activity.get("type") == "probe":
        entry["selection"] = "a probe: reads only"
        return entry
    resolver = RESOLVERS.get(call)
    if resolver is None:
        entry["unknown"] = f"unknown: would call {call}({_args_text(shown)})"
        return entry
    try:
        entry.update(redaction.scrub(resolver(ctx, arguments), ctx.secrets))
    except Exception as exc:  # an unreadable selection is reported, not fatal: it is a dry run
        reason = redaction.text(_reason(exc), ctx.secrets)
        entry["unknown"] = f"unknown: would call {call}({_args_text(shown)}); could not resolve: {reason}"
    return entry


def _args_text(arguments: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in arguments.items())


def _reason(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    return f"{status} {getattr(exc, 'reason', '')}".strip() if status else f"{type(exc).__name__}: {exc}"


# --- Kubernetes --------------------------------------------------------------------------
def _pod_row(pod: Any) -> dict[str, Any]:
    return {"kind": "pod", "namespace": pod.metadata.namespace, "name": pod.metadata.name,
            "node": pod.spec.node_name if pod.spec else None}  # fmt: skip


def _pods(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    ns = args.get("ns", "default")
    label_selector, pattern = args.get("label_selector"), args.get("name_pattern")
    items = ctx.core.list_namespaced_pod(
        ns, label_selector=label_selector or None, _request_timeout=TIMEOUT
    ).items
    if pattern:
        items = [p for p in items if re.search(pattern, p.metadata.name)]
    n = len(items)
    if args.get("all"):
        picked = f"all {n}"
    else:
        qty = int(args.get("qty", 1))
        if args.get("mode", "fixed") == "percentage":
            qty = math.ceil(qty * n / 100)
        qty = min(qty, n)
        how = (
            "at random"
            if args.get("rand")
            else ("oldest first" if args.get("order") == "oldest" else "in list order")
        )
        picked = f"{qty} of {n}, {how}"
    return {"touches": [_pod_row(p) for p in items], "selection": f"pods in {ns}: {picked}"}


def _nodes(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    name, label_selector = args.get("name"), args.get("label_selector")
    items = ctx.core.list_node(label_selector=label_selector or None, _request_timeout=TIMEOUT).items
    if name:
        items = [n for n in items if n.metadata.name == name]
    pod_selector, pod_ns = args.get("pod_label_selector"), args.get("pod_namespace")
    if pod_selector and pod_ns:
        hosts = {p.spec.node_name for p in ctx.core.list_namespaced_pod(
            pod_ns, label_selector=pod_selector, _request_timeout=TIMEOUT).items if p.spec}  # fmt: skip
        items = [n for n in items if n.metadata.name in hosts]
    rows = [{"kind": "node", "name": n.metadata.name,
             "zone": (n.metadata.labels or {}).get("topology.kubernetes.io/zone")} for n in items]  # fmt: skip
    if args.get("first"):
        selection = f"the first of {len(rows)} nodes"
    elif args.get("count") is not None:
        selection = f"{args['count']} of {len(rows)} nodes at random"
    else:
        selection = f"all {len(rows)} nodes"
    return {"touches": rows, "selection": selection}


def _deployment(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    ns = args.get("ns", "default")
    if args.get("name"):
        items = [ctx.apps.read_namespaced_deployment(args["name"], ns, _request_timeout=TIMEOUT)]
    else:
        items = ctx.apps.list_namespaced_deployment(
            ns, label_selector=args.get("label_selector") or None, _request_timeout=TIMEOUT
        ).items
    rows = [{"kind": "deployment", "namespace": ns, "name": d.metadata.name,
             "replicas": d.spec.replicas if d.spec else None} for d in items]  # fmt: skip
    extra = f", scaled to {args['replicas']}" if "replicas" in args else ""
    return {"touches": rows, "selection": f"{len(rows)} deployment(s) in {ns}{extra}"}


def _policy_pods(ctx: _Context, ns: str, pod_selector: Mapping[str, Any] | None, what: str) -> dict[str, Any]:
    text = selectors.to_text(pod_selector)
    items = ctx.core.list_namespaced_pod(ns, label_selector=text or None, _request_timeout=TIMEOUT).items
    shown = text or "every pod"
    return {
        "touches": [_pod_row(p) for p in items],
        "selection": f"{what} selecting {shown} in {ns}: {len(items)} pod(s)",
    }


def _network_policy(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    spec = args.get("spec")
    if spec is None and args.get("spec_path"):
        spec = yaml.safe_load(Path(args["spec_path"]).read_text())
    spec = spec or {}
    name = (spec.get("metadata") or {}).get("name", "?")
    return _policy_pods(ctx, args.get("ns", "default"), (spec.get("spec") or {}).get("podSelector"),
                        f"network policy {name}")  # fmt: skip


def _deny_all(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    labels = args.get("label_selectors")
    return _policy_pods(ctx, args.get("ns", "default"), {"matchLabels": labels} if labels else {},
                        "a deny-all network policy")  # fmt: skip


# --- AWS ---------------------------------------------------------------------------------
def _instances(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    ec2 = ctx.boto("ec2")
    ids = args.get("instance_ids") or ([args["instance_id"]] if args.get("instance_id") else None)
    filters = [dict(f) for f in args.get("filters") or []]
    if args.get("az"):
        filters.append({"Name": "availability-zone", "Values": [args["az"]]})
    request: dict[str, Any] = {"InstanceIds": ids} if ids else {"Filters": filters}
    rows = []
    for page in ec2.get_paginator("describe_instances").paginate(**request):
        for reservation in page["Reservations"]:
            for i in reservation["Instances"]:
                rows.append({"kind": "ec2_instance", "id": i["InstanceId"], "state": i["State"]["Name"],
                             "zone": i.get("Placement", {}).get("AvailabilityZone"),
                             "tags": {t["Key"]: t["Value"] for t in i.get("Tags", [])}})  # fmt: skip
    return {"touches": rows, "selection": f"{len(rows)} EC2 instance(s)"}


def _asgs(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    asg = ctx.boto("autoscaling")
    names = args.get("asg_names")
    if not names and args.get("tags"):
        filters = [f for t in args["tags"] for f in ({"Name": "key", "Values": [t["Key"]]},
                                                     {"Name": "value", "Values": [t["Value"]]})]  # fmt: skip
        tags = asg.describe_tags(Filters=filters)["Tags"]
        names = sorted({t["ResourceId"] for t in tags if t["ResourceType"] == "auto-scaling-group"})
    groups = (
        asg.describe_auto_scaling_groups(AutoScalingGroupNames=names or [])["AutoScalingGroups"]
        if names
        else []
    )
    rows = []
    for g in groups:
        for i in g.get("Instances", []):
            if args.get("az") and i.get("AvailabilityZone") != args["az"]:
                continue
            rows.append({"kind": "ec2_instance", "id": i["InstanceId"], "asg": g["AutoScalingGroupName"],
                         "zone": i.get("AvailabilityZone"), "state": i.get("LifecycleState")})  # fmt: skip
    if args.get("instance_count") is not None:
        how = f"{args['instance_count']} of {len(rows)} at random"
    elif args.get("instance_percent") is not None:
        how = f"{args['instance_percent']}% of {len(rows)} at random"
    else:
        how = f"all {len(rows)}" if rows else "none"
    return {
        "touches": rows,
        "selection": f"instances of ASG(s) {', '.join(names or []) or '(none found)'}: {how}",
    }


# --- our own activities: harness.chaos.activities.kubernetes ---------------------------------
def _absent(exc: Exception) -> bool:
    return getattr(exc, "status", None) == 404


def _wait_for_deployment(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    ns = args.get("ns", "default")
    pods = f" and pods {args['label_selector']!r} all Ready" if args.get("label_selector") else ""
    return {"selection": f"reads only: waits until deployment {ns}/{args.get('name')} is fully available{pods} "
                         f"(at most {args.get('timeout_s', 180)} s)"}  # fmt: skip


def _scale_recording(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    out = _deployment(ctx, args)
    out["selection"] += f", the current count recorded in {k8s_activities.PREVIOUS_REPLICAS}"
    return out


def _restore_scale(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    ns, name = args.get("ns", "default"), args.get("name")
    try:
        d = ctx.apps.read_namespaced_deployment(name, ns, _request_timeout=TIMEOUT)
    except k8s_client.ApiException as exc:
        if _absent(exc):
            return {"selection": f"no deployment {ns}/{name}: nothing to restore"}
        raise
    recorded = (d.metadata.annotations or {}).get(k8s_activities.PREVIOUS_REPLICAS)
    if recorded is None:
        return {"selection": f"deployment {ns}/{name} has no recorded count: nothing to restore"}
    row = {
        "kind": "deployment",
        "namespace": ns,
        "name": name,
        "replicas": d.spec.replicas if d.spec else None,
    }
    return {
        "touches": [row],
        "selection": f"deployment {ns}/{name} scaled back to {recorded}, record removed",
    }


def _hosting(ctx: _Context, label_selector: str, ns: str) -> set[str]:
    return k8s_activities.nodes_hosting(ctx.core, label_selector, ns, timeout_s=TIMEOUT)


def _service_pods(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    """terminate_service_pods: refused without a selector; on cordoned nodes only, if asked."""
    ns = args.get("ns", "default")
    selector = k8s_activities.require_selector(args.get("label_selector"), "terminate_service_pods")
    items = [p for p in ctx.core.list_namespaced_pod(ns, label_selector=selector, _request_timeout=TIMEOUT).items
             if p.metadata.deletion_timestamp is None and p.status and p.status.phase in ("Running", "Pending")]  # fmt: skip
    where = ""
    if args.get("on_cordoned_nodes"):
        label = f"{k8s_activities.CORDONED}=true"
        cordoned = {
            n.metadata.name for n in ctx.core.list_node(label_selector=label, _request_timeout=TIMEOUT).items
        }
        items = [p for p in items if p.spec and p.spec.node_name in cordoned]
        where = f" on nodes labelled {label} (now: {', '.join(sorted(cordoned)) or 'none; the cordon comes first'})"
    n, qty = len(items), int(args.get("qty", 1))
    if args.get("mode", "fixed") == "percentage":
        qty = math.ceil(qty * n / 100)
    how = "at random" if args.get("rand", True) else "in name order"
    return {"touches": [_pod_row(p) for p in items],
            "selection": f"pods {selector!r} in {ns}{where}: {min(qty, n)} of {n}, {how}, deleted"}  # fmt: skip


def _cordon_nodes(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    label_selector, ns = args.get("label_selector", ""), args.get("ns", "default")
    count = int(args.get("count", 1))
    cordoned = f"{k8s_activities.CORDONED}=true"
    ours = sorted(
        n.metadata.name for n in ctx.core.list_node(label_selector=cordoned, _request_timeout=TIMEOUT).items
    )
    hosting = _hosting(ctx, label_selector, ns)
    nodes = ctx.core.list_node(
        label_selector=args.get("node_label_selector") or None, _request_timeout=TIMEOUT
    ).items
    own = k8s_activities.harness_node()
    candidates = [n for n in nodes if n.metadata.name in hosting and not (n.spec and n.spec.unschedulable)
                  and n.metadata.name not in ours and n.metadata.name != own]  # fmt: skip
    blocked: dict[str, list[str]] = {}
    if args.get("drain"):
        for n in candidates:
            pods = ctx.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={n.metadata.name}", _request_timeout=TIMEOUT
            ).items
            plan = k8s_activities.drain_plan(pods, bool(args.get("delete_pods_with_local_storage")))
            if plan["blocking"]:
                blocked[n.metadata.name] = sorted(plan["blocking"])
        candidates = [n for n in candidates if n.metadata.name not in blocked]
    rows = [{"kind": "node", "name": n.metadata.name,
             "zone": (n.metadata.labels or {}).get("topology.kubernetes.io/zone")} for n in candidates]  # fmt: skip
    rows += [{"kind": "node", "name": name, "already": "cordoned by the harness"} for name in ours]
    rows += [{"kind": "node", "name": name, "never": f"a drain would refuse: {', '.join(pods)} (no controller)"}
             for name, pods in sorted(blocked.items())]  # fmt: skip
    if own:
        rows.append(
            {
                "kind": "node",
                "name": own,
                "never": f"the harness's own node (${k8s_activities.HARNESS_NODE_ENV})",
            }
        )
    wanted = max(0, count - len(ours))
    selection = (
        f"{wanted} of {len(candidates)} schedulable node(s) hosting {label_selector!r} in {ns}, at random"
    )
    if ours:
        selection += f"; reuses {len(ours)} already cordoned"
    if wanted > len(candidates):
        selection += f" (too few: the action would fail, {count} wanted)"
    if args.get("drain"):
        local = "deleted" if args.get("delete_pods_with_local_storage") else "left"
        selection += (f"; then drained (evictions, a PodDisruptionBudget's 429 retried for at most "
                      f"{args.get('timeout_s', 120)} s; DaemonSet and mirror pods left, pods with emptyDir {local})")  # fmt: skip
        for n in [*candidates, *(n for n in nodes if n.metadata.name in ours)]:
            on_node = ctx.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={n.metadata.name}", _request_timeout=TIMEOUT
            ).items
            rows += [_pod_row(p) for p in on_node]
    return {"touches": rows, "selection": selection}


def _uncordon_ours(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    label = f"{k8s_activities.CORDONED}=true"
    nodes = ctx.core.list_node(label_selector=label, _request_timeout=TIMEOUT).items
    rows = [{"kind": "node", "name": n.metadata.name} for n in nodes]
    return {"touches": rows, "selection": f"{len(rows)} node(s) labelled {label}: uncordoned, label removed"}


def _deny_pod_traffic(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    name = k8s_activities.policy_name(args.get("direction", "ingress"))
    selector = k8s_activities.label_selector_object(args.get("label_selector", ""))
    return _policy_pods(ctx, args.get("ns", "default"), selector, f"network policy {name}")


def _allow_pod_traffic(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    name, ns = k8s_activities.policy_name(args.get("direction", "ingress")), args.get("ns", "default")
    try:
        policy = ctx.networking.read_namespaced_network_policy(name, ns, _request_timeout=TIMEOUT)
    except k8s_client.ApiException as exc:
        if _absent(exc):
            return {"selection": f"no network policy {ns}/{name}: nothing to delete"}
        raise
    if (policy.metadata.labels or {}).items() >= k8s_activities.MANAGED_BY.items():
        row = {"kind": "networkpolicy", "namespace": ns, "name": name}
        return {"touches": [row], "selection": f"network policy {ns}/{name} (ours): deleted"}
    return {"selection": f"network policy {ns}/{name} was not created by the harness: left in place"}


def _start_network_chaos(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    ns = args.get("ns", "default")
    k8s_activities.label_selector_object(args.get("label_selector", ""))  # refused as the action would
    pods = ctx.core.list_namespaced_pod(
        ns, label_selector=args.get("label_selector"), _request_timeout=TIMEOUT
    ).items
    rows = [_pod_row(p) for p in pods]
    percentage = int(args.get("percentage", 100))
    selection = (f"NetworkChaos {ns}/{args.get('name')} ({args.get('action')}) on "
                 f"{'all' if percentage >= 100 else f'{percentage}% of'} {len(rows)} pod(s) "
                 f"for {args.get('duration_s', 60)} s")  # fmt: skip
    if args.get("target_label_selector"):
        target = ctx.core.list_namespaced_pod(
            ns, label_selector=args["target_label_selector"], _request_timeout=TIMEOUT
        ).items
        rows += [{**_pod_row(p), "side": "target"} for p in target]
        selection += f", towards {len(target)} pod(s) {args['target_label_selector']!r} ({args.get('direction', 'to')})"
    return {"touches": rows, "selection": selection}


def _stop_network_chaos(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    ns, name = args.get("ns", "default"), args.get("name")
    group, version, plural = k8s_activities.CHAOS_MESH
    try:
        ctx.custom.get_namespaced_custom_object(group, version, ns, plural, name, _request_timeout=TIMEOUT)
    except k8s_client.ApiException as exc:
        if _absent(exc):
            return {"selection": f"no NetworkChaos {ns}/{name}: nothing to delete"}
        raise
    row = {"kind": "networkchaos", "namespace": ns, "name": name}
    return {"touches": [row], "selection": f"NetworkChaos {ns}/{name}: deleted"}


def _apiserver_load(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    where = "all namespaces" if args.get("all_namespaces") else f"namespace {args.get('ns', 'default')}"
    host = ctx.connection.api.configuration.host if ctx.connection is not None else None
    return {"touches": [{"kind": "apiserver", "name": host}],
            "selection": f"reads only: {args.get('threads', 8)} thread(s) LIST pods in {where} "
                         f"for {args.get('duration_s', 60)} s"}  # fmt: skip


# --- our own activities: harness.chaos.activities.aws -------------------------------------------
def _instance_rows(ctx: _Context, ids: dict[str, str | None]) -> list[dict[str, Any]]:
    """Instance id -> node name, as rows with each instance's state (a filter: absent ids are no error)."""
    if not ids:
        return []
    ec2 = ctx.boto("ec2")
    found: dict[str, dict[str, Any]] = {}
    for page in ec2.get_paginator("describe_instances").paginate(
        Filters=[{"Name": "instance-id", "Values": sorted(ids)}]
    ):
        for reservation in page["Reservations"]:
            for i in reservation["Instances"]:
                found[i["InstanceId"]] = i
    return [{"kind": "ec2_instance", "id": iid, "node": node,
             "state": found[iid]["State"]["Name"] if iid in found else "not found",
             "zone": found.get(iid, {}).get("Placement", {}).get("AvailabilityZone")}
            for iid, node in sorted(ids.items())]  # fmt: skip


def _tagged(ctx: _Context, value: str) -> dict[str, str | None]:
    """The running instances this cluster marked with the fault, as the undos find them."""
    cluster, _ = aws_activities.mark_identity(ctx.configuration)
    filters = [{"Name": f"tag:{aws_activities.FAULT_TAG}", "Values": [value]},
               {"Name": f"tag:{aws_activities.CLUSTER_TAG}", "Values": [cluster]},
               {"Name": "instance-state-name", "Values": ["running"]}]  # fmt: skip
    reservations = ctx.boto("ec2").describe_instances(Filters=filters)["Reservations"]
    return {i["InstanceId"]: None for r in reservations for i in r["Instances"]}


def _node_instances(ctx: _Context, nodes: list[Any]) -> dict[str, str | None]:
    """Instance id -> node name: by provider id, else by InternalIP (as the SSM activities map them)."""
    out: dict[str, str | None] = {}
    by_ip: dict[str, str] = {}
    for n in nodes:
        if iid := aws_activities.instance_id_from_provider_id(n.spec.provider_id if n.spec else None):
            out[iid] = n.metadata.name
        else:
            ips = [
                a.address for a in (n.status.addresses if n.status else None) or [] if a.type == "InternalIP"
            ]
            if ips:
                by_ip[ips[0]] = n.metadata.name
    if by_ip:
        filters = [{"Name": "private-ip-address", "Values": sorted(by_ip)}]
        for r in ctx.boto("ec2").describe_instances(Filters=filters)["Reservations"]:
            for i in r["Instances"]:
                if i.get("PrivateIpAddress") in by_ip:
                    out[i["InstanceId"]] = by_ip[i["PrivateIpAddress"]]
    return out


def _stop_kubelet(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    # a new run never reuses an earlier run's marks: the action picks afresh
    hosting = _hosting(ctx, args.get("label_selector", ""), args.get("ns", "default"))
    nodes = [n for n in ctx.core.list_node(_request_timeout=TIMEOUT).items if n.metadata.name in hosting]
    rows = _instance_rows(ctx, _node_instances(ctx, nodes))
    return {"touches": rows, "selection": f"1 of {len(rows)} instance(s) hosting the service, at random: "
                                          "tagged, then kubelet stopped through SSM"}  # fmt: skip


def _start_kubelet(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    rows = _instance_rows(ctx, _tagged(ctx, "kubelet"))
    return {"touches": rows, "selection": f"{len(rows)} instance(s) tagged {aws_activities.FAULT_TAG}=kubelet: "
                                          "kubelet started through SSM, tag removed"}  # fmt: skip


def _park_static_pod(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    component, member = args.get("component"), args.get("member", "any")
    selector = args.get("node_label_selector") or "node-role.kubernetes.io/control-plane"
    nodes = ctx.core.list_node(label_selector=selector, _request_timeout=TIMEOUT).items
    rows = _instance_rows(ctx, _node_instances(ctx, nodes))
    which = {"any": "one at random",
             "leader": "the etcd leader (asked of etcd through SSM at run time, not in a dry run)",
             "follower": "an etcd follower at random (the leader is asked through SSM at run time)"}.get(
                 member, f"refused: member {member!r}")  # fmt: skip
    check = ("if etcd keeps quorum without it (asked at run time)" if component == "etcd" else
             "if another API server serves (default/kubernetes Endpoints)")  # fmt: skip
    return {"touches": rows, "selection": f"of {len(rows)} control-plane instance(s) ({selector}), {which}, "
                                          f"{check}: {component} manifest parked through SSM"}  # fmt: skip


def _restore_static_pods(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    rows = _instance_rows(ctx, _tagged(ctx, "static-pod"))
    return {"touches": rows, "selection": f"{len(rows)} instance(s) tagged "
                                          f"{aws_activities.FAULT_TAG}=static-pod: parked manifests moved back, "
                                          "tag removed"}  # fmt: skip


def _subnet_rows(ec2: Any, subnet_ids: list[str]) -> list[dict[str, Any]]:
    acls = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": subnet_ids}])
    current = {a["SubnetId"]: acl["NetworkAclId"] for acl in acls["NetworkAcls"] for a in acl["Associations"]}
    return [{"kind": "subnet", "id": s, "network_acl": current.get(s)} for s in subnet_ids]


def _blackhole_zone(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    zone = args.get("availability_zone") or ""
    filters = aws_activities.zone_subnet_filters(
        zone, args.get("cluster_name") or "", args.get("vpc_id") or ""
    )
    ec2 = ctx.boto("ec2")
    subnets = ec2.describe_subnets(Filters=filters)["Subnets"]
    vpcs = sorted({s["VpcId"] for s in subnets})
    rows = _subnet_rows(ec2, sorted(s["SubnetId"] for s in subnets)) if subnets else []
    if len(vpcs) != 1:
        return {
            "touches": rows,
            "selection": f"the subnets of {zone} span {len(vpcs)} VPC(s): the action would fail",
        }
    shared = aws_activities.shared_infrastructure_subnets(ec2, vpcs[0])
    for row in rows:
        row["skipped"] = shared.get(row["id"])
    cut = sum(1 for row in rows if not row["skipped"])
    return {"touches": rows, "selection": f"{cut} subnet(s) of {zone} in {vpcs[0]}: moved to a deny-all network ACL "
                                          "(previous ACL recorded), undone by EventBridge Scheduler after duration_s + "
                                          "restore_margin_s if the harness does not; subnets with shared "
                                          "infrastructure skipped"}  # fmt: skip


def _restore_zone(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    zone = args.get("availability_zone")
    ec2 = ctx.boto("ec2")
    filters = [{"Name": f"tag:{aws_activities.BLACKHOLE_TAG}", "Values": [zone]}]
    rows: list[dict[str, Any]] = []
    for acl in ec2.describe_network_acls(Filters=filters)["NetworkAcls"]:
        tags = {t["Key"]: t["Value"] for t in acl.get("Tags", [])}
        rows.append(
            {"kind": "network_acl", "id": acl["NetworkAclId"], "vpc": acl["VpcId"], "then": "deleted"}
        )
        rows += [{"kind": "subnet", "id": a["SubnetId"],
                  "back_to": tags.get(aws_activities.PREVIOUS_PREFIX + a["SubnetId"], "the VPC's default ACL")}
                 for a in acl["Associations"]]  # fmt: skip
    if not rows:
        return {"selection": f"no blackhole network ACL for {zone}: nothing to restore"}
    return {
        "touches": rows,
        "selection": f"subnets of {zone} back on their previous ACL; blackhole ACL deleted",
    }


def _fis_template(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    template_id = args.get("experiment_template_id")
    if not template_id:
        raise ValueError("no experiment_template_id (set fis_template_id)")
    template = ctx.boto("fis").get_experiment_template(id=template_id)["experimentTemplate"]
    actions = template.get("actions") or {}
    targets = template.get("targets") or {}
    rows = [{"kind": "fis_action", "name": name, "action": a.get("actionId"),
             "targets": ", ".join(f"{k}={v}" for k, v in (a.get("targets") or {}).items()) or None}
            for name, a in sorted(actions.items())]  # fmt: skip
    rows += [{"kind": "fis_target", "name": name, "resource": t.get("resourceType"),
              "selection": t.get("selectionMode"),
              "tags": t.get("resourceTags") or None, "arns": t.get("resourceArns") or None}
             for name, t in sorted(targets.items())]  # fmt: skip
    return {"touches": rows, "selection": f"FIS experiment from template {template_id}: "
                                          f"{len(actions)} action(s) on {len(targets)} target(s), resolved by FIS "
                                          "when it starts"}  # fmt: skip


def _stop_fis(ctx: _Context, args: dict[str, Any]) -> dict[str, Any]:
    tags = dict(args.get("tags") or {})
    if not tags:
        raise ValueError("no tags: the action refuses to stop FIS experiments unselected")
    fis = ctx.boto("fis")
    rows = []
    kwargs: dict[str, Any] = {"maxResults": 100}
    while True:
        page = fis.list_experiments(**kwargs)
        for exp in page.get("experiments", []):
            if (
                exp["state"]["status"] in ("pending", "initiating", "running")
                and tags.items() <= (exp.get("tags") or {}).items()
            ):
                rows.append({"kind": "fis_experiment", "id": exp["id"], "state": exp["state"]["status"]})
        if not page.get("nextToken"):
            break
        kwargs["nextToken"] = page["nextToken"]
    return {"touches": rows, "selection": f"{len(rows)} active FIS experiment(s) tagged {tags}: stopped"}


def _never_ours(found: dict[str, Any], how: str = "") -> dict[str, Any]:
    """The harness's own terminations never pick the node it runs on (HARNESS_NODE_NAME)."""
    return {**found, "selection": f"{found['selection']}{how}; never the harness's own node"}


_POD_ACTIONS = ("terminate_pods", "exec_in_pods", "delete_pods")
_NODE_ACTIONS = ("cordon_node", "uncordon_node", "drain_nodes", "delete_nodes")
_DEPLOYMENT_ACTIONS = ("scale_deployment", "delete_deployment", "rollout_deployment")
_EC2_ACTIONS = ("stop_instance", "stop_instances", "terminate_instance", "terminate_instances",
                "start_instances", "restart_instances")  # fmt: skip
_ASG_ACTIONS = ("terminate_random_instances", "stop_random_instances", "detach_random_instances")
RESOLVERS: dict[str, Resolver] = {
    **{f"chaosk8s.pod.actions.{f}": _pods for f in _POD_ACTIONS},
    **{f"chaosk8s.node.actions.{f}": _nodes for f in _NODE_ACTIONS},
    **{f"chaosk8s.deployment.actions.{f}": _deployment for f in _DEPLOYMENT_ACTIONS},
    "chaosk8s.networking.actions.create_network_policy": _network_policy,
    **{f"chaosk8s.networking.actions.{f}": _deny_all for f in ("deny_all_ingress", "deny_all_egress")},
    **{f"chaosaws.ec2.actions.{f}": _instances for f in _EC2_ACTIONS},
    **{f"chaosaws.asg.actions.{f}": _asgs for f in _ASG_ACTIONS},
    "chaosaws.fis.actions.start_experiment": _fis_template,
    "harness.chaos.activities.kubernetes.wait_for_deployment": _wait_for_deployment,
    "harness.chaos.activities.kubernetes.terminate_service_pods": _service_pods,
    "harness.chaos.activities.kubernetes.scale_deployment_recording": _scale_recording,
    "harness.chaos.activities.kubernetes.restore_deployment_scale": _restore_scale,
    "harness.chaos.activities.kubernetes.cordon_nodes_hosting": _cordon_nodes,
    "harness.chaos.activities.kubernetes.uncordon_harness_nodes": _uncordon_ours,
    "harness.chaos.activities.kubernetes.deny_pod_traffic": _deny_pod_traffic,
    "harness.chaos.activities.kubernetes.allow_pod_traffic": _allow_pod_traffic,
    "harness.chaos.activities.kubernetes.start_network_chaos": _start_network_chaos,
    "harness.chaos.activities.kubernetes.stop_network_chaos": _stop_network_chaos,
    "harness.chaos.activities.kubernetes.apiserver_load": _apiserver_load,
    "harness.chaos.activities.aws.stop_kubelet": _stop_kubelet,
    "harness.chaos.activities.aws.start_kubelet": _start_kubelet,
    "harness.chaos.activities.aws.park_static_pod": _park_static_pod,
    "harness.chaos.activities.aws.restore_static_pods": _restore_static_pods,
    "harness.chaos.activities.aws.blackhole_availability_zone": _blackhole_zone,
    "harness.chaos.activities.aws.restore_availability_zone": _restore_zone,
    "harness.chaos.activities.aws.stop_fis_experiments": _stop_fis,
    "harness.chaos.activities.aws.start_fis_experiment": _fis_template,
    "harness.chaos.activities.aws.terminate_node_group_instances": lambda ctx, args: _never_ours(
        _instances(ctx, {"filters": args.get("filters"), "az": args.get("availability_zone")}),
        f", at most {args.get('max_instances', 1)} of them at random",
    ),
    "harness.chaos.activities.aws.terminate_asg_instances": lambda ctx, args: _never_ours(
        _asgs(ctx, {"asg_names": [args.get("asg_name")], "instance_count": args.get("qty", 1)})
    ),
}
"""The actions whose targets the dry run can find, by `module.func`."""


def render(entries: list[dict[str, Any]]) -> str:
    """Plain text for the terminal: per scenario, per activity, what it would touch."""
    lines: list[str] = []
    scenario = None
    for e in entries:
        if e["scenario"] != scenario:
            scenario = e["scenario"]
            lines.append(f"scenario {scenario} ({e['experiment']})")
            if e.get("refused"):
                lines.append(f"  REFUSED: {e['refused']}")
        head = f"  [{e['section']}] {e['type']} {e['name']!r}"
        if e.get("call"):
            head += f": {e['call']}({_args_text(e['arguments'] or {})})"
        lines.append(head)
        if e.get("unknown"):
            lines.append(f"      {e['unknown']}")
            continue
        if e.get("selection"):
            lines.append(f"      {e['selection']}")
        for t in e.get("touches") or []:
            details = ", ".join(
                f"{k}={v}" for k, v in t.items() if k not in ("kind", "name", "id") and v is not None
            )
            lines.append(
                f"      - {t['kind']} {t.get('name') or t.get('id')}" + (f" ({details})" if details else "")
            )
    return "\n".join(lines) + ("\n" if lines else "")

"""`harness run --dry-run`: what every scenario's experiment would touch, without touching it.

For each method and rollback activity: the call with its arguments after chaoslib's own
`${...}` substitution (the target's configuration, then the scenario's vars, as the engine
passes them), and what it would act on, found with reads only — pods by label selector and
name pattern (with their nodes), nodes by name, label or the pods they host, a deployment by
name or label, the pods a network policy would select, EC2 instances and ASGs through boto3
`describe_*` calls. Anything else is listed as "unknown: would call MODULE.FUNC(args)": the
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

from harness.chaos import experiment as chaos_experiment
from harness.errors import HarnessError
from harness.kubernetes import client, selectors
from harness.kubernetes.target import KubernetesTarget

TIMEOUT = (5.0, 15.0)
Resolver = Callable[["_Context", dict[str, Any]], dict[str, Any]]


class _Context:
    """What resolvers need: the read-only clients and the configuration."""

    def __init__(self, connection: client.Connection | None, configuration: Mapping[str, Any]) -> None:
        self.connection = connection
        self.configuration = configuration

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
            configuration = load_configuration(
                {**variables, **(experiment.get("configuration") or {})}, extra_vars=variables
            )
            ctx = _Context(connection, configuration)
            refused = None
            if connection is not None:
                try:
                    client.check_experiment_secrets(experiment, connection.context, str(scenario.experiment))
                except HarnessError as exc:
                    refused = str(exc)
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
        entry["unknown"] = (
            f"unknown: would run a {kind} provider: {target} {provider.get('arguments') or ''}".strip()
        )
        return entry
    call = f"{provider.get('module')}.{provider.get('func')}"
    arguments = substitute(dict(provider.get("arguments") or {}), dict(configuration), {})
    entry["call"], entry["arguments"] = call, arguments
    if activity.get("type") == "probe":
        entry["selection"] = "a probe: reads only"
        return entry
    resolver = RESOLVERS.get(call)
    if resolver is None:
        entry["unknown"] = f"unknown: would call {call}({_args_text(arguments)})"
        return entry
    try:
        entry.update(resolver(ctx, arguments))
    except Exception as exc:  # an unreadable selection is reported, not fatal: it is a dry run
        entry["unknown"] = (
            f"unknown: would call {call}({_args_text(arguments)}); could not resolve: {_reason(exc)}"
        )
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

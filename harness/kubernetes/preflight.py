"""`harness preflight PLAN`: can this plan run on its cluster? Reads only; a checklist, and an exit code.

In order, each check one line (checklist.py), stopping where the rest cannot be asked:

1. the plan and every experiment load and validate (file:line on error);
2. the context is in allowed_contexts and no experiment's secrets point elsewhere;
3. the API server answers `/version` through the connection the run uses (`client.connect`:
   the allowed-context check, a kubeconfig holding only that context) — exit 3 when it does not;
4. every permission the experiments' activities need (permissions.ACTIVITIES, arguments
   substituted as the run substitutes them) is granted, asked with one SelfSubjectAccessReview
   each; a denied one blocks and names the scenario and activity needing it. What only the
   engine needs (sampler, facts, events, heal) warns;
5. the CustomResourceDefinitions they need are installed (Chaos Mesh's NetworkChaos);
6. the target's selector is set and matches ready pods in the namespace;
7. with AWS in the plan: credentials, region, EC2 dry runs and the IAM policy (awscheck.py).

Before the permissions, the cluster's facts decide which scenarios apply (harness.plan.applicability,
as the run decides): one that does not (a control-plane fault on EKS) is listed as not applicable,
a warning, and what only it would need is not asked for: the run will report it, not run or fail it.

Nothing is created, patched or deleted: the only POSTs are SelfSubjectAccessReviews, which the
API server answers without storing anything. Exit 0 when nothing blocks, 2 when something does,
3 when the cluster (or AWS) cannot be reached.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import urllib3
from rich.console import Console

from harness.errors import HarnessError, InputError
from harness.kubernetes import awscheck, checklist, facts, permissions
from harness.kubernetes.checklist import Check, Status

TIMEOUT = (5.0, 15.0)
RBAC_FIX = (
    "grant it in deploy/gameday/rbac.yaml (kube-system: deploy/gameday/kube-system/rbac.yaml) and apply it"
)


def run(plan_arg: str, console: Console) -> int:
    """Print the checklist line by line on `console` (rich); the exit code: 0, 2 or 3."""
    checks = []
    for check in preflight(plan_arg):
        checks.append(check)
        console.print(checklist.render(check), highlight=False)
    code = checklist.exit_code(checks)
    verdict = {
        0: "nothing blocks the run",
        2: "the run would fail: fix what is blocked",
        3: "the target cannot be reached",
    }
    console.print(f"preflight: {verdict[code]}", highlight=False)
    return code


def preflight(plan_arg: str, environ: Mapping[str, str] | None = None) -> Iterator[Check]:
    """Every check of the module docstring, in order, as it completes."""
    from harness.plan import loading, validation

    try:
        path = loading.resolve_plan_arg(plan_arg)
        plan = loading.load_plan(path)
        for scenario in plan.scenarios:
            validation.validate_file(Path(scenario.experiment))
    except HarnessError as exc:
        yield Check("plan", Status.BLOCKED, str(exc), "correct what the message names, then run again")
        return
    if plan.target.kind != "kubernetes":
        yield Check(
            "plan",
            Status.BLOCKED,
            f"{path}: the target is the local testbed",
            "preflight is for kind: kubernetes targets; `harness run` checks the testbed itself",
        )
        return
    yield Check("plan", Status.OK, f"{path}: {len(plan.scenarios)} scenario(s), every experiment valid")
    yield from _checks(plan, environ)


def _checks(plan: Any, environ: Mapping[str, str] | None) -> Iterator[Check]:
    from harness.chaos import experiment as chaos_experiment
    from harness.kubernetes import client

    target = plan.target
    context = target.effective_context
    experiments = {str(s.experiment): chaos_experiment.load(Path(s.experiment)) for s in plan.scenarios}
    try:
        for source, experiment in experiments.items():
            client.check_experiment_secrets(experiment, context, source)
    except InputError as exc:
        yield Check(
            "context", Status.BLOCKED, str(exc), "remove the secret; the plan's target sets the context"
        )
        return
    yield Check(
        "context", Status.OK, f"{context!r} is in allowed_contexts ({', '.join(target.allowed_contexts)})"
    )

    try:
        connection = client.connect(target, environ)
    except InputError as exc:
        yield Check("API server", Status.BLOCKED, str(exc), "fix the kubeconfig or the plan's context")
        return
    except HarnessError as exc:
        yield Check(
            "API server", Status.UNREACHABLE, str(exc), "check the network path, VPN and endpoint access"
        )
        return
    try:
        yield Check(
            "API server", Status.OK, f"{connection.server} answers {_version(connection)} ({context})"
        )
        skipped = yield from _applicability(plan, connection)
        try:
            calls, others = _calls(plan, experiments, skipped)
        except Exception as exc:  # chaoslib: a configuration value it cannot resolve (an unset env var)
            yield Check("plan", Status.BLOCKED, f"cannot resolve the experiments' configuration: {exc}",
                        "set what the configuration names, or give the value in the scenario's vars")  # fmt: skip
            return
        for scenario, activity, kind in others:
            yield Check(
                "permissions",
                Status.WARNING,
                f"{scenario}: activity {activity!r} runs a {kind} provider; what it needs is not checked",
            )
        needs = permissions.requirements(calls, target.namespace)
        yield from _permissions(connection, needs)
        yield from _crds(connection, needs)
        yield from _selector(connection, target)
        if target.aws is not None or any(permissions.uses_aws(c.function) for c in calls):
            yield from awscheck.check(target.aws, needs.aws)
    except _Unreachable as exc:
        yield Check("API server", Status.UNREACHABLE, str(exc), "check the network path, then run again")
    finally:
        connection.close()


class _Unreachable(Exception):
    """The API server stopped answering part-way."""


def _version(connection: Any) -> str:
    from kubernetes import client as k8s_client

    try:
        return k8s_client.VersionApi(connection.api).get_code(_request_timeout=TIMEOUT).git_version
    except Exception:  # it answered a moment ago, in connect(); the version is only for the line
        return "/version"


def _applicability(plan: Any, connection: Any) -> Generator[Check, None, set[str]]:
    """A warning for each scenario the cluster's facts rule out; the names of those scenarios."""
    from harness.plan import applicability

    if not any(s.requires for s in plan.scenarios):
        return set()
    cluster = facts.cluster_facts(connection, plan.target.selector)
    skipped = set()
    for scenario in plan.scenarios:
        reason = applicability.not_applicable(scenario.requires, cluster)
        if reason is None:
            continue
        skipped.add(scenario.name)
        yield Check(
            "applicability",
            Status.WARNING,
            f"{scenario.name}: {applicability.label(reason)}: {reason}",
            "the run reports it as not applicable: not run, not failed; what only it needs is not checked",
        )
    return skipped


def _calls(
    plan: Any, experiments: Mapping[str, Any], skipped: set[str] | None = None
) -> tuple[list[permissions.Call], list[tuple[str, str, str]]]:
    """Every activity of every scenario (steady state, method, rollbacks) with its arguments
    substituted as the run substitutes them: target configuration, then the scenario's vars.
    Scenarios in `skipped` (not applicable to the cluster) are left out."""
    from chaoslib import substitute
    from chaoslib.configuration import load_configuration

    from harness.kubernetes import dryrun
    from harness.kubernetes.target import KubernetesTarget

    target_config = KubernetesTarget(plan.target, url=plan.load.host).configuration()
    calls: list[permissions.Call] = []
    others: list[tuple[str, str, str]] = []
    for scenario in plan.scenarios:
        if scenario.name in (skipped or ()):
            continue
        experiment = experiments[str(scenario.experiment)]
        variables = {**target_config, **dict(scenario.vars)}
        configuration = load_configuration(
            {**variables, **(experiment.get("configuration") or {})}, extra_vars=variables
        )
        steady = (experiment.get("steady-state-hypothesis") or {}).get("probes") or []
        for activity in [*steady, *(experiment.get("method") or []), *(experiment.get("rollbacks") or [])]:
            activity = dryrun._dereference(activity, experiment)
            provider = activity.get("provider") or {}
            name = str(activity.get("name"))
            if provider.get("type") != "python":
                others.append((scenario.name, name, str(provider.get("type"))))
                continue
            arguments = substitute(dict(provider.get("arguments") or {}), dict(configuration), {})
            function = f"{provider.get('module')}.{provider.get('func')}"
            calls.append(
                permissions.Call(scenario.name, name, function, arguments, Path(scenario.experiment).name)
            )
    return calls, others


def access_review_body(req: permissions.Requirement) -> dict[str, Any]:
    """The SelfSubjectAccessReview asking whether this identity may do `req`."""
    if req.resource.startswith("/"):
        spec: dict[str, Any] = {"nonResourceAttributes": {"path": req.resource, "verb": req.verb}}
    else:
        resource, _, subresource = req.resource.partition("/")
        attributes = {"verb": req.verb, "group": req.group, "resource": resource}
        if subresource:
            attributes["subresource"] = subresource
        if req.namespace is not None:
            attributes["namespace"] = req.namespace
        if req.name:
            attributes["name"] = req.name
        spec = {"resourceAttributes": attributes}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec}


def _allowed(connection: Any, req: permissions.Requirement) -> tuple[bool, str]:
    from kubernetes import client as k8s_client
    from kubernetes.client.exceptions import ApiException

    api = k8s_client.AuthorizationV1Api(connection.api)
    try:
        review = api.create_self_subject_access_review(access_review_body(req), _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status and exc.status >= 500:
            raise _Unreachable(
                f"{connection.server}: SelfSubjectAccessReview answered {exc.status} {exc.reason}"
            ) from exc
        return False, f"the API server refused the review itself ({exc.status} {exc.reason})"
    except urllib3.exceptions.HTTPError as exc:  # connection lost
        raise _Unreachable(f"{connection.server} stopped answering: {exc}") from exc
    status = review.status
    reason = (status.reason or status.evaluation_error or "").strip() if status else ""
    return bool(status and status.allowed), reason


def _permissions(connection: Any, needs: permissions.Needs) -> Iterator[Check]:
    granted = 0
    for req in needs.kubernetes:
        allowed, reason = _allowed(connection, req)
        if allowed:
            granted += 1
            continue
        why = f" ({reason})" if reason else ""
        yield Check(
            "permissions",
            Status.BLOCKED,
            f"{req.describe()} is not permitted{why}; needed by {'; '.join(req.needed_by)}",
            RBAC_FIX,
        )
    for req in needs.engine:
        allowed, reason = _allowed(connection, req)
        if allowed:
            granted += 1
            continue
        yield Check(
            "permissions",
            Status.WARNING,
            f"{req.describe()} is not permitted; the {req.needed_by[0]} goes without it",
            RBAC_FIX,
        )
    total = len(needs.kubernetes) + len(needs.engine)
    if granted == total:
        yield Check("permissions", Status.OK, f"all {total} permission(s) granted (SelfSubjectAccessReview)")
    for call in needs.unknown:
        yield Check(
            "permissions",
            Status.WARNING,
            f"{call.scenario}: {call.function} is not in the preflight's table; what it needs is not checked",
            "check its permissions by hand",
        )


def _crds(connection: Any, needs: permissions.Needs) -> Iterator[Check]:
    from kubernetes import client as k8s_client
    from kubernetes.client.exceptions import ApiException

    ext = k8s_client.ApiextensionsV1Api(connection.api)
    for crd, scenarios in sorted(needs.crds.items()):
        try:
            ext.read_custom_resource_definition(crd, _request_timeout=TIMEOUT, _preload_content=False).read()
        except ApiException as exc:
            if exc.status == 404:
                yield Check("CRDs", Status.BLOCKED, f"{crd} is not installed; needed by {', '.join(scenarios)}",
                            "install Chaos Mesh (https://chaos-mesh.org/docs/), or drop those scenarios")  # fmt: skip
            elif exc.status and exc.status >= 500:
                raise _Unreachable(f"{connection.server}: reading {crd} answered {exc.status}") from exc
            else:
                yield Check("CRDs", Status.BLOCKED, f"cannot read {crd}: {exc.status} {exc.reason}", RBAC_FIX)
            continue
        except urllib3.exceptions.HTTPError as exc:  # connection lost
            raise _Unreachable(f"{connection.server} stopped answering: {exc}") from exc
        yield Check("CRDs", Status.OK, f"{crd} is installed")


def _ready(pod: Any) -> bool:
    if pod.metadata.deletion_timestamp is not None:
        return False
    conditions = (pod.status.conditions if pod.status else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _selector(connection: Any, target: Any) -> Iterator[Check]:
    from kubernetes import client as k8s_client
    from kubernetes.client.exceptions import ApiException

    ns, selector = target.namespace, target.selector
    if not selector:
        yield Check("selector", Status.BLOCKED,
                    "target.selector is not set: pod faults would pick from every pod of the namespace",
                    "set target.selector to the service's pod labels (e.g. app=subs)")  # fmt: skip
        return
    try:
        pods = (
            k8s_client.CoreV1Api(connection.api)
            .list_namespaced_pod(ns, label_selector=selector, _request_timeout=TIMEOUT)
            .items
        )
    except ApiException as exc:
        if exc.status and exc.status >= 500:
            raise _Unreachable(f"{connection.server}: listing pods answered {exc.status}") from exc
        yield Check(
            "selector", Status.BLOCKED, f"cannot list pods in {ns}: {exc.status} {exc.reason}", RBAC_FIX
        )
        return
    except urllib3.exceptions.HTTPError as exc:  # connection lost
        raise _Unreachable(f"{connection.server} stopped answering: {exc}") from exc
    ready = sum(1 for p in pods if _ready(p))
    if ready == 0:
        found = f"{len(pods)} pod(s) match, none ready" if pods else "no pod matches"
        yield Check("selector", Status.BLOCKED, f"{selector!r} in {ns}: {found}",
                    "check target.namespace and target.selector against `kubectl get pods -n "
                    f"{ns} --show-labels`, and that the service is deployed and ready")  # fmt: skip
        return
    yield Check("selector", Status.OK, f"{selector!r} in {ns}: {ready} of {len(pods)} pod(s) ready")

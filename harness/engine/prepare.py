"""Before anything is injected: the plan loaded and linted, every experiment checked, or a dry run.

Called by `harness run` and `harness gate` (through harness.engine.commands) and by
`harness validate`. Everything here reads files, and a Kubernetes plan's kubeconfig for its
dry run; nothing starts or touches a target, so a wrong plan costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from harness import redaction
from harness.errors import InputError
from harness.plan import KubernetesTarget, LoadSpec, Plan, TestbedTarget, lint, loading, validation

Warn = Callable[[object], None]
"""Receives each plan lint (a warning the user should see; the command goes on)."""


def with_cluster(plan: Plan, cluster: str | None) -> Plan:
    """The plan with --cluster applied (target.cluster), or as it is."""
    if cluster is None:
        return plan
    try:
        return plan.with_cluster(cluster)
    except ValueError as exc:
        raise InputError(f"--cluster {cluster!r}: {exc}") from None


def prepare_plan(plan_arg: str | None, trials: int | None, cluster: str | None, warn: Warn) -> Plan:
    """The plan to run, with its flags applied; InputError before anything is injected.

    Lints are passed to `warn` as soon as they are found, so they are seen even when a later
    check refuses the plan.
    """
    path = loading.resolve_plan_arg(plan_arg)
    plan = loading.load_plan(path)
    for warning in lint.plan_warnings(path):
        warn(warning)
    if trials is not None:
        plan = plan.with_trials(trials)
    plan = with_cluster(plan, cluster)
    for scenario in plan.scenarios:  # every experiment is checked before anything is injected
        validation.validate_file(Path(scenario.experiment))
    check_experiment_secrets(plan)
    return plan


@dataclass(frozen=True)
class Side:
    """One target of a run that runs the plan on several (`--profile`, `--context`)."""

    name: str
    """The profile or the context: the side's label in `harness compare`."""
    plan: Plan
    """The plan with this side's target (and, on a cluster, its service URL)."""


def sides(plan: Plan, profiles: Sequence[str], contexts: Sequence[str], cluster: str | None) -> list[Side]:
    """The plan once per `--profile` (testbed) or `--context CONTEXT=URL` (Kubernetes) given,
    in the order given (the first is the comparison's baseline); InputError naming the flag.

    No flag: one side, the plan as it is (with --cluster applied)."""
    if profiles and contexts:
        raise InputError("--profile, --context: a plan has one kind of target; give sides of one kind")
    if profiles:
        if cluster is not None:
            raise InputError("--cluster: names a Kubernetes cluster; testbed sides are named by --profile")
        return [Side(name, _with_profile(plan, name)) for name in _unique("--profile", profiles)]
    if contexts:
        found = [_with_context(plan, value, several=len(contexts) > 1) for value in contexts]
        _unique("--context", [side.name for side in found])
        if len(found) > 1:
            if cluster is not None:
                raise InputError(
                    f"--cluster: names one cluster and this run has {len(found)} sides (each is named by "
                    "its --context)"
                )
            _unique("--context (URL)", [side.plan.load.host for side in found])
        for side in found:
            check_experiment_secrets(side.plan)
        return [Side(side.name, with_cluster(side.plan, cluster)) for side in found]
    return [Side("", with_cluster(plan, cluster))]


def _unique(flag: str, values: Sequence[str]) -> list[str]:
    """The values, refusing one given twice: two sides on one target compare nothing."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise InputError(f"{flag} {value}: given twice; each side needs a target of its own")
        seen.add(value)
    return list(values)


def _with_profile(plan: Plan, profile: str) -> Plan:
    if not isinstance(plan.target, TestbedTarget):
        raise InputError(
            f"--profile {profile}: the plan's target is {plan.target.kind}; its sides are chosen with "
            "--context CONTEXT=URL"
        )
    try:
        target = TestbedTarget.model_validate({**plan.target.model_dump(), "profile": profile})
    except ValidationError:
        raise InputError(f"--profile: expected self-managed or managed, got {profile!r}") from None
    return plan.model_copy(update={"target": target})


def _with_context(plan: Plan, value: str, several: bool) -> Side:
    """The plan aimed at CONTEXT (one of its allowed_contexts), its load at URL when given.

    With several sides a URL is required: each cluster serves at its own address, and sides
    sharing the plan's load.host would load one service while faulting two clusters."""
    context, _, url = value.partition("=")
    if not isinstance(plan.target, KubernetesTarget):
        raise InputError(
            f"--context {context}: the plan's target is the {plan.target.kind}; its sides are chosen with "
            "--profile"
        )
    if not context:
        raise InputError(f"--context {value!r}: expected CONTEXT=URL, such as eks-prod=https://subs.example")
    if several and not url:
        raise InputError(
            f"--context {context}: give the service's URL in that cluster (--context {context}=URL): the "
            "sides' loads cannot all go to the plan's load.host"
        )
    try:
        # cluster reset: the plan's name for one cluster would be every side's; the context names it.
        target = KubernetesTarget.model_validate(
            {**plan.target.model_dump(), "context": context, "cluster": None}
        )
        load = LoadSpec.model_validate({**plan.load.model_dump(), "host": url}) if url else plan.load
    except ValidationError as exc:
        raise InputError(f"--context {value}: {exc.errors()[0]['msg']}") from None
    return Side(context, plan.model_copy(update={"target": target, "load": load}))


def check_experiment_secrets(plan: Plan) -> None:
    """InputError when an experiment's secrets would leave a Kubernetes plan's context (run and validate)."""
    if plan.target.kind == "kubernetes":
        # Chaos Toolkit and the Kubernetes client are imported only for a Kubernetes plan.
        from harness import kubernetes
        from harness.chaos import experiment as chaos_experiment

        for scenario in plan.scenarios:
            kubernetes.check_experiment_secrets(
                chaos_experiment.load(Path(scenario.experiment)),
                plan.target.effective_context,
                str(scenario.experiment),
            )


@dataclass(frozen=True)
class Validated:
    """A file `harness validate` accepted: what it is, and the lints to show after it."""

    kind: str
    """"plan" or "experiment"."""
    warnings: list[object]


def validate(path: Path) -> Validated:
    """Check one plan or experiment file, running nothing; InputError on its first problem."""
    kind = validation.validate_file(path)
    if kind != "plan":
        return Validated(kind, [])
    check_experiment_secrets(loading.load_plan(path))
    return Validated(kind, list(lint.plan_warnings(path)))


@dataclass(frozen=True)
class DryRun:
    """What every activity of a plan would touch, and why the plan would be refused, if it would."""

    text: str
    """The table of activities, secrets masked."""
    refused: list[str]
    """Each distinct reason an experiment would leave the plan's context, sorted."""

    @property
    def exit_code(self) -> int:
        """2 when an experiment would leave the plan's context, else 0."""
        return 2 if self.refused else 0


def dry_run(plan: Plan) -> DryRun:
    """The plan's dry run, touching nothing."""
    from harness import kubernetes  # the Kubernetes client only when asked for

    entries = kubernetes.dry_run(plan)
    refused = sorted({e["refused"] for e in entries if e.get("refused")})
    return DryRun(redaction.text(kubernetes.render(entries)), refused)

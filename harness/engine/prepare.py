"""Before anything is injected: the plan loaded and linted, every experiment checked, or a dry run.

Called by `harness run` and `harness gate` (through harness.engine.commands) and by
`harness validate`. Everything here reads files, and a Kubernetes plan's kubeconfig for its
dry run; nothing starts or touches a target, so a wrong plan costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness import redaction
from harness.errors import InputError
from harness.plan import Plan, lint, loading, validation

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

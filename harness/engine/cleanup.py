"""`harness cleanup`: undo every fault a crashed or killed run left applied.

On the testbed, harness.testbed.faults knows every fault it applied. On a plan's Kubernetes
target, the target heals what harness activities left marked in the cluster (as the engine
does after each scenario), then every experiment's rollbacks run: they undo what healing
cannot see.
"""

from __future__ import annotations

from pathlib import Path

from harness import runlock
from harness.engine import prepare
from harness.engine.targets import make_target
from harness.plan import loading
from harness.testbed import faults


def cleanup(
    testbed_dir: Path, plan_arg: str | None = None, cluster: str | None = None, force: bool = False
) -> list[str]:
    """One line per step done (or failed): the testbed's faults, or a plan's target.

    A testbed folder a live run holds (harness.runlock) is left alone unless `force`: its faults
    are that run's, and it undoes them itself."""
    plan = None
    if plan_arg is not None:
        plan = prepare.with_cluster(loading.load_plan(loading.resolve_plan_arg(plan_arg)), cluster)
    if plan is None or plan.target.kind == "testbed":
        runlock.refuse_if_held(testbed_dir, "cleanup", force)
        return faults.cleanup(testbed_dir)
    from harness.chaos import experiment as chaos_experiment  # Chaos Toolkit only for a cluster

    target = make_target(plan.target, testbed_dir)
    target.open()
    try:
        done = target.heal()
        seen: set[tuple[str, str]] = set()
        for scenario in plan.scenarios:  # then every experiment's rollbacks: they undo what heal cannot see
            key = (str(scenario.experiment), repr(sorted(scenario.vars.items())))
            if key in seen:
                continue
            seen.add(key)
            variables = {**target.configuration(), **scenario.vars}
            experiment = chaos_experiment.load(Path(scenario.experiment))
            for record in chaos_experiment.run_rollbacks(experiment, variables):
                error = f": {' '.join(str(record['error']).split())[:300]}" if record["error"] else ""
                done.append(f"{scenario.name}: rollback '{record['name']}' {record['status']}{error}")
        return done
    finally:
        target.close()


def failed_steps(done: list[str]) -> list[str]:
    """The steps of `cleanup` that failed: a fault may still be applied."""
    return [line for line in done if line.startswith("could not check") or "' failed" in line]

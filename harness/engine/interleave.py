"""One plan on several targets, their trials interleaved in time: the sides of a comparison.

Called by `harness run PLAN --profile A --profile B` (or `--context`, through
harness.engine.commands). A side measured in a run of its own carries that run's luck (the
machine's load that night, the cluster's state) into every trial, and a comparison that pools
its trials as independent finds differences that are not there. So the sides take turns: for
each scenario, trial k runs on every side before trial k + 1 runs on any, and the trials of
one k form a **block** that a stratified comparison pairs. Each side is an ordinary run
(`runner.Engine`) with its own run folder and result.json, all carrying one `batch` id.

Within a block the order alternates (A B, then B A): a reversed order puts each side at
position i in one block and N + 1 - i in the next, so a drift that grows steadily through the
command (a warming machine, a filling disk) costs every side the same over each pair of blocks.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.engine.runner import Engine
from harness.engine.stopping import Interrupted, open_signal_handlers
from harness.errors import HarnessError
from harness.result import model as result_model


@dataclass(frozen=True)
class Turn:
    """One trial of one scenario on one side (an index into the sides)."""

    scenario: str
    trial: int
    side: int


def schedule(trials: Sequence[tuple[str, int]], sides: int) -> list[Turn]:
    """Every trial of every scenario on every side, in the order they run.

    trials: each scenario's name and trial count, in the plan's order. Trial k of a scenario
    runs on all sides in a row (a block), in the sides' order for odd k and reversed for even k.
    """
    turns = []
    for scenario, count in trials:
        for trial in range(1, count + 1):
            order = range(sides) if trial % 2 else reversed(range(sides))
            turns.extend(Turn(scenario, trial, side) for side in order)
    return turns


def new_batch_id(plan_name: str, now: dt.datetime | None = None) -> str:
    """The id every side's result.json carries: when the command started, the plan, a nonce."""
    now = now or dt.datetime.now(dt.UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{plan_name}-batch-{secrets.token_hex(3)}"


def run_sides(engines: Sequence[Engine]) -> list[result_model.Result]:
    """Run the engines' plans with their trials interleaved; each side's result, in order.

    All targets are opened (each holding its lock) before the first trial, so a side that cannot
    start stops the command before anything is injected anywhere. Ctrl-C or SIGTERM stops every
    side: the trial running rolls back (as in a run of its own), every side's folder keeps the
    trials scored so far, and Interrupted is raised after every side is written. A HarnessError
    outside a trial (a target that cannot be opened or healed) fails that side and stops the others.
    """
    plans = [engine.plan for engine in engines]
    names = [s.name for s in plans[0].scenarios]
    if any([s.name for s in plan.scenarios] != names for plan in plans):
        raise ValueError("the sides of an interleaved run must have the same scenarios")
    scenarios: list[dict[str, Any]] = [{s.name: s for s in plan.scenarios} for plan in plans]
    turns = schedule([(s.name, s.trials) for s in plans[0].scenarios], len(engines))
    stopped: BaseException | None = None
    for engine in engines:
        engine.start()
    current: Engine | None = None
    try:
        with open_signal_handlers():
            for engine in engines:
                current = engine
                engine.open_target()
            for turn in turns:
                current = engines[turn.side]
                current.run_trial(scenarios[turn.side][turn.scenario], turn.trial)
        for engine in engines:
            engine.head["status"] = "completed"
    except (Interrupted, KeyboardInterrupt) as exc:
        stopped = exc if isinstance(exc, HarnessError) else Interrupted("stopped by Ctrl-C")
        for engine in engines:
            engine.head["status"] = "interrupted"
    except HarnessError as exc:
        stopped = exc
        culprit = current.side if current is not None else None
        for engine in engines:
            if engine is current:
                engine.fail(exc)
            else:
                engine.fail(HarnessError(f"stopped because side {culprit} could not go on: {exc}"))
    finally:
        results = _finish_all(engines)
    if stopped is not None:
        raise stopped
    return results


def _finish_all(engines: Sequence[Engine]) -> list[result_model.Result]:
    """Every side finished (target released, result written) even when one of them fails to."""
    results: list[result_model.Result] = []
    failure: BaseException | None = None
    for engine in engines:
        try:
            results.append(engine.finish())
        except BaseException as exc:  # the next side's folder must still be written
            failure = failure or exc
    if failure is not None:
        raise failure
    return results

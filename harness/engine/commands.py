"""The engine's side of the commands that run, score and render plans, and clean up after them.

harness.cli parses flags and calls one function here per command; each function does the work,
writes what the user reads to an `Output`, and returns the command's exit code (0 passed,
1 a gate failed, 2 bad input, 3 the run could not complete). Errors the user can act on are
raised as HarnessError, which the CLI prints with its exit code.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from harness.engine import prepare
from harness.errors import HarnessError, InputError
from harness.plan import loading

if TYPE_CHECKING:
    from harness.result import model as result_model

# The runner and the history store are imported by the commands that use them, so that
# `harness validate` loads neither Chaos Toolkit nor the testbed.


class Output(Protocol):
    """Where a command's lines go: the terminal for the CLI (results on stdout, problems on stderr)."""

    def print(self, text: str, *, highlight: bool = True, end: str = "\n") -> None:
        """A line of the command's result (stdout)."""
        ...

    def warning(self, message: object) -> None:
        """Something the user should know that does not stop the command (stderr)."""
        ...

    def note(self, text: str) -> None:
        """A plain line about the command, not its result (stderr)."""
        ...

    def error(self, message: object) -> None:
        """A problem that decides the exit code, reported without stopping at the first (stderr)."""
        ...


@dataclass(frozen=True)
class RunRequest:
    """`harness run` and `harness gate` as the user asked for them."""

    plan_arg: str | None
    """A plan file or a bundled plan's name; None: the bundled local game day."""
    reports: Path
    testbed_dir: Path
    keep_testbed: bool = False
    quiet: bool = False
    """`harness gate`: no progress and no summary, only where the run folder and report are."""
    trials: int | None = None
    history_url: str | None = None
    dry_run: bool = False
    cluster: str | None = None
    wait_s: float = 0.0
    """--wait: how long to wait for another run holding the target; 0: fail at once (exit 2)."""
    profiles: tuple[str, ...] = ()
    """--profile: the testbed profile of each side; several run interleaved."""
    contexts: tuple[str, ...] = ()
    """--context CONTEXT[=URL]: the Kubernetes context (and service URL) of each side."""


def run_plan(request: RunRequest, output: Output) -> int:
    """Prepare and run a plan (or only dry-run it) on its target, or on each side's with their
    trials interleaved; the run's exit code (the worst side's)."""
    plan = prepare.prepare_plan(request.plan_arg, request.trials, None, output.warning)
    sides = prepare.sides(plan, request.profiles, request.contexts, request.cluster)
    if request.dry_run:
        codes = []
        for side in sides:
            if len(sides) > 1:
                output.print(f"side {side.name}:", highlight=False)
            dry = prepare.dry_run(side.plan)
            output.print(dry.text, highlight=False, end="")
            for reason in dry.refused:
                output.error(reason)
            codes.append(dry.exit_code)
        return max(codes)
    if len(sides) > 1:
        return _run_sides(request, sides, output)
    plan = sides[0].plan
    from harness.engine import runner
    from harness.engine.progress import Progress
    from harness.store import history

    with history.open_history(request.history_url, request.reports) as store:
        engine = runner.Engine(
            plan,
            request.reports,
            request.testbed_dir,
            Progress(quiet=request.quiet),
            keep_testbed=request.keep_testbed,
            store=store,
            wait_s=request.wait_s,
        )
        result = engine.run()
    if not request.quiet:
        output.print((engine.run_dir / "summary.md").read_text(), highlight=False)
    else:  # `harness gate` prints no summary: what failed and why, what was not run (no failure)
        for line in why_lines(engine.run_dir, result) + not_applicable_lines(result) + unsteady_lines(result):
            output.print(line, highlight=False)
    output.print(f"run folder: {engine.run_dir}")
    output.print(f"report: {engine.run_dir / 'report.html'}")
    if request.quiet:
        _publish_for_ci(engine.run_dir, output)
    return runner.exit_code(result)


def why_lines(run_dir: Path, result: result_model.Result) -> list[str]:
    """One terse line per reason a trial did not pass (gate, steady state, error), for CI logs."""
    from harness.report import why
    from harness.store import runview

    return why.console_lines(why.failures(result, runview.failed_journals(run_dir, result)))


def _publish_for_ci(run_dir: Path, output: Output) -> None:
    """`harness gate`: the paths a CI step publishes, and summary.md on the job's page when the
    CI offers one ($GITHUB_STEP_SUMMARY); a summary that cannot be written does not change the verdict."""
    from harness.engine import ci

    for line in ci.path_lines(run_dir):
        output.print(line, highlight=False)
    try:
        ci.append_step_summary(run_dir)
    except OSError as exc:
        output.warning(f"${ci.STEP_SUMMARY_ENV}: could not append the summary: {exc}")


def not_applicable_lines(result: result_model.Result) -> list[str]:
    """One line per scenario the target could not run, with why; it counts as no failure."""
    return [
        f"{s.name}: not applicable ({s.not_applicable}); not run, not a failure"
        for s in result.scenarios
        if s.not_applicable
    ]


def unsteady_lines(result: result_model.Result) -> list[str]:
    """One line per scenario whose load was not steady before the fault, with the failed checks."""
    out = []
    for s in result.scenarios:
        check = s.baseline_check
        if check is not None and not check.steady:
            then = "fault injected anyway" if check.went_on else "no fault injected"
            out.append(f"{s.name}#{s.trial}: baseline not steady ({check.reasons()}); {then}")
    return out


def side_testbed_dir(testbed_dir: Path, side: prepare.Side) -> Path:
    """Where a testbed side's testbed lives: beside --dir, named for its profile
    (~/.cache/harness/testbed-managed), so each side holds a testbed and a run lock of its own."""
    return testbed_dir.with_name(f"{testbed_dir.name}-{side.name}")


def _run_sides(request: RunRequest, sides: list[prepare.Side], output: Output) -> int:
    """Several sides, trials interleaved (harness.engine.interleave); every side's folder is
    printed, also when the run stops early. Once every side has finished, their comparison is
    written beside the runs (REPORTS/compare-BATCH/) and the command that redoes it is printed."""
    from harness.engine import interleave, runner
    from harness.engine.progress import Progress
    from harness.store import history

    batch = interleave.new_batch_id(sides[0].plan.name)
    with history.open_history(request.history_url, request.reports) as store:
        progress = Progress(quiet=request.quiet)
        engines = [
            runner.Engine(
                side.plan,
                request.reports,
                side_testbed_dir(request.testbed_dir, side),
                progress,
                keep_testbed=request.keep_testbed,
                store=store,
                wait_s=request.wait_s,
                side=side.name,
                batch=batch,
            )
            for side in sides
        ]
        output.note(
            f"batch {batch}: {len(sides)} sides, trials interleaved: {', '.join(s.name for s in sides)}"
        )
        try:
            results = interleave.run_sides(engines)
        finally:
            for engine in engines:
                if engine.run_dir.exists():
                    output.print(f"run folder ({engine.side}): {engine.run_dir}", highlight=False)
    return finish_sides(engines, results, request.reports / f"compare-{batch}", output, quiet=request.quiet)


class SideRun(Protocol):
    """What the end of a several-sided run needs of a side: its name and its run folder
    (runner.Engine has both)."""

    side: str | None
    run_dir: Path


def finish_sides(
    sides: Sequence[SideRun],
    results: Sequence[result_model.Result],
    compare_dir: Path,
    output: Output,
    quiet: bool = False,
) -> int:
    """After every side finished: their summaries and reports, their comparison written into
    compare_dir, the command that redoes it; the worst side's exit code (the comparison, written
    or not, does not change it)."""
    from harness.engine import runner

    if not quiet:
        for side in sides:
            output.print(f"## {side.side}", highlight=False)
            output.print((side.run_dir / "summary.md").read_text(), highlight=False)
    else:
        for side, result in zip(sides, results, strict=True):
            for line in why_lines(side.run_dir, result) + not_applicable_lines(result):
                output.print(f"{side.side}: {line}", highlight=False)
    for side in sides:
        output.print(f"report ({side.side}): {side.run_dir / 'report.html'}", highlight=False)
    try:
        html = write_side_comparison(sides, compare_dir)
    except HarnessError as exc:  # the sides' results stand without it; the command below redoes it
        output.warning(f"no comparison written: {exc}")
    else:
        output.print(f"comparison: {html}", highlight=False)
    output.print("compare: " + compare_command(sides), highlight=False)
    return max(runner.exit_code(result) for result in results)


def write_side_comparison(sides: Sequence[SideRun], folder: Path) -> Path:
    """Compare the sides' run folders as `harness compare --label SIDE=RUN_DIR ...` does, the first
    side the baseline, with the plan's compare settings; compare.html and compare.md in folder.
    Returns the HTML page's path."""
    from harness import compare

    labels = {str(side.side): [side.run_dir] for side in sides}
    report = compare.compare_runs([], labels, alpha=0.05, metrics=None)
    html, _ = compare.write_comparison(report, folder)
    return html


def compare_command(sides: Sequence[SideRun]) -> str:
    """The `harness compare` command line for the sides' folders, the first side the baseline."""
    import shlex

    labels = [f"--label {shlex.quote(f'{side.side}={side.run_dir}')}" for side in sides]
    return "harness compare " + " ".join(labels)


def validate(files: list[Path], output: Output) -> int:
    """`harness validate`: each file (or bundled plan's name) checked in turn; the first problem
    raises (exit 2)."""
    for path in files:
        # A bare name (no slash, no suffix) is a bundled plan unless a file of that name is here;
        # only such short names are looked up, so an over-long path never reaches stat().
        bundled = loading.bundled_plan(str(path))
        checked = prepare.validate(path if bundled is None or path.exists() else bundled)
        output.print(f"{path}: valid {checked.kind}")
        for warning in checked.warnings:
            output.warning(warning)
    return 0


def score_run(run_dir: Path, history_url: str | None, output: Output) -> int:
    """`harness score`: result.json and what is rendered from it again, from the run folder alone."""
    from harness.engine import runner
    from harness.store import history

    folder = checked_run_dir(run_dir)
    with history.open_history(history_url, folder.parent) as store:
        result = runner.rescore(folder, store)
    verdict = "passed" if result.passed else "not passed"
    output.print(f"rescored {len(result.scenarios)} scenario(s): {verdict}")
    return runner.exit_code(result)


def render_run(run_dir: Path, history_url: str | None, output: Output) -> int:
    """`harness report`: report.html, summary.md and junit.xml again from result.json as it is."""
    from harness.engine import runner
    from harness.store import history

    folder = checked_run_dir(run_dir)
    with history.open_history(history_url, folder.parent) as store:
        runner.rerender(folder, store)
    output.print(f"report: {folder / 'report.html'}")
    return 0


def list_findings(run_dir: Path, as_json: bool, output: Output) -> int:
    """`harness findings`: a run's findings, most severe first (docs/findings.md); exit 0 whatever
    they say. Worked out from result.json and plan.json for runs written before findings existed."""
    import json

    from harness import findings
    from harness.result import files as result_files
    from harness.store import rundir

    folder = checked_run_dir(run_dir)
    if not (folder / rundir.RESULT).is_file():
        raise InputError(f"RUN_DIR: {folder} has no {rundir.RESULT}; is it a run directory?")
    result = result_files.read(folder / rundir.RESULT)
    plan = rundir.read_json(folder / rundir.PLAN)
    listed = findings.of_result(result, plan if isinstance(plan, dict) else None)
    if as_json:
        rows = [
            {
                "scenario": x.scenario,
                "trial": x.trial,
                **x.finding.model_dump(mode="json", exclude_unset=True),
            }
            for x in listed
        ]
        output.print(json.dumps(rows, indent=2), highlight=False)
        return 0
    output.print(f"run {result.run_id}: {_count_findings(listed)}", highlight=False)
    for x in listed:
        f = x.finding
        output.print(f"\n{f.severity.upper()} {x.where}: {f.title} [{f.id}]", highlight=False)
        output.print(f"  evidence: {f.evidence}", highlight=False)
        output.print(f"  change: {f.recommendation}", highlight=False)
        if f.expected_effect is not None:
            e = f.expected_effect
            output.print(f"  expected: {e.metric} {e.change:+g} ({e.text})", highlight=False)
    return 0


def _count_findings(listed: list[Any]) -> str:
    """`3 findings (1 critical, 2 info)`, or `no findings`."""
    if not listed:
        return "no findings"
    counts: dict[str, int] = {}
    for x in listed:
        counts[x.finding.severity] = counts.get(x.finding.severity, 0) + 1
    parts = ", ".join(f"{n} {severity}" for severity, n in counts.items())
    return f"{len(listed)} finding{'s' if len(listed) != 1 else ''} ({parts})"


def checked_run_dir(path: Path) -> Path:
    """The run folder, absolute; InputError when it is not one."""
    from harness.store import rundir

    return rundir.check_run_dir(path).resolve()


def clean_up(
    testbed_dir: Path, plan_arg: str | None, cluster: str | None, output: Output, force: bool = False
) -> int:
    """`harness cleanup`: every step printed; exit 3 when a step failed (a fault may remain)."""
    from harness.engine import cleanup

    done = cleanup.cleanup(testbed_dir, plan_arg, cluster, force=force)
    for line in done:
        output.print(line, highlight=False)
    failed = cleanup.failed_steps(done)
    if failed:
        output.note(f"cleanup: {len(failed)} step(s) failed (above); the target may still carry a fault")
        return 3
    if plan_arg is not None:
        output.print(f"cleanup: {len(done)} step(s) done, none failed")
    else:
        output.print(f"cleanup: {len(done)} fault(s) undone" if done else "cleanup: nothing to undo")
    return 0

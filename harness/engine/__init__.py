"""The engine: turns a plan into measured, scored, gated scenarios.

ci         what a CI job reads from `harness gate`: file paths, the job summary
commands   what `harness run`, `gate`, `validate`, `score`, `report` and `cleanup` do
prepare    before anything is injected: the plan loaded and checked, or a dry run
cleanup    undo the faults a crashed or killed run left applied
runner     the scenarios of a run, in order (abort watches the live timeline, stopping
           turns Ctrl-C and SIGTERM into rollbacks and partial results)
interleave one plan on several targets, trial k on every side before trial k + 1 on any

The public modules are not imported here: importing the runner loads Chaos Toolkit and the
testbed, which `harness validate` does not need.
"""

__all__ = ["ci", "cleanup", "commands", "interleave", "prepare", "runner"]

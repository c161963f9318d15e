"""Where runs are kept: the run directory (rundir) and the history of runs (history)."""

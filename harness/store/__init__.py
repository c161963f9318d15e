"""Where runs are kept: the run directory (rundir) and, later, the history of runs."""

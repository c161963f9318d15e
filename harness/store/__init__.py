"""Where runs are kept: the run directory (rundir), what the report reads of it (runview) and the
history of runs (history)."""

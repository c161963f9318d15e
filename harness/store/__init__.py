"""Where runs are kept: the run directory (rundir), what the report reads of it (runview) and the
history of runs (history).

The public modules are not imported here: the history store loads SQLAlchemy, which reading a
run folder does not need.
"""

__all__ = ["history", "rundir", "runview"]

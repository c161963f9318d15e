"""Chaos Toolkit integration: running an experiment for the engine (experiment), the control
that marks every activity on the timeline (control) and the harness's own actions and probes
(activities).

The public modules are not imported here: Chaos Toolkit loads `harness.chaos.control` and the
activities by name, and a testbed run must not import the Kubernetes or AWS clients.
"""

__all__ = ["activities", "control", "experiment"]

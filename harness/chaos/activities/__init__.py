"""Chaos Toolkit activities (python provider) written by the harness: on the testbed, on a
Kubernetes cluster, on AWS.

Experiments name them by module (`harness.chaos.activities.testbed`), so they are not imported
here: a testbed experiment loads no Kubernetes or AWS client.
"""

__all__ = ["aws", "kubernetes", "testbed"]

"""Load shapes for the subscription traffic: constant, step, spike, diurnal.

Use with the journeys:  locust -f loadtests/subscriptions.py,loadtests/shapes.py --shape step
The shape and its options live in harness.load.locustshape, which the engine uses.
"""

from harness.load.locustshape import HarnessShape  # noqa: F401  (Locust finds the shape class here)

"""Load shapes for the subscription traffic: constant, step, spike, diurnal.

Use with the journeys:  locust -f loadtests/subscriptions.py,loadtests/shapes.py --shape step
Options: --shape KIND --shape-users N --shape-duration S [--shape-steps N]
[--shape-spike-factor X] [--shape-period S]. The profiles are in harness.load.shapes.
"""

from locust import LoadTestShape, events

from harness.load.shapes import Profile, ShapeKind


@events.init_command_line_parser.add_listener
def _options(parser):
    group = parser.add_argument_group("shape", "Harness load shape")
    group.add_argument("--shape", choices=[k.value for k in ShapeKind], default="constant")
    group.add_argument("--shape-users", type=int, default=20, help="Users at the base or peak level")
    group.add_argument("--shape-duration", type=float, default=60.0, help="Seconds until the test stops")
    group.add_argument("--shape-steps", type=int, default=4, help="step: number of increments")
    group.add_argument("--shape-spike-factor", type=float, default=3.0, help="spike: multiple of base users")
    group.add_argument("--shape-period", type=float, default=60.0, help="diurnal: seconds per 'day'")


class HarnessShape(LoadTestShape):
    """Follows the profile chosen with --shape."""

    def tick(self):
        o = self.runner.environment.parsed_options
        profile = Profile(
            kind=ShapeKind(o.shape),
            users=o.shape_users,
            duration_s=o.shape_duration,
            steps=o.shape_steps,
            spike_factor=o.shape_spike_factor,
            period_s=o.shape_period,
        )
        return profile.tick(self.get_run_time())

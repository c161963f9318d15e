"""Load shapes inside Locust: constant, step, spike, diurnal (profiles in harness.load.shapes).

A locustfile of its own, given to Locust beside the user's: the engine runs
`locust -f LOCUSTFILE,<this file> --shape KIND --shape-users N --shape-duration S --shape-hold`
for a plan whose `load.shape` is not constant. By hand:
`locust -f loadtests/subscriptions.py,harness/load/locustshape.py --shape step`.
Options: --shape KIND --shape-users N --shape-duration S [--shape-steps N]
[--shape-spike-factor X] [--shape-period S] [--shape-hold].

Imports Locust (which patches the process with gevent): the harness itself never imports it.
"""

from locust import LoadTestShape, events

from harness.load.shapes import Profile, ShapeKind


@events.init_command_line_parser.add_listener
def _options(parser):
    group = parser.add_argument_group("shape", "Harness load shape")
    group.add_argument("--shape", choices=[k.value for k in ShapeKind], default="constant")
    group.add_argument("--shape-users", type=int, default=20, help="Users at the base or peak level")
    group.add_argument("--shape-duration", type=float, default=60.0, help="Seconds the profile spans")
    group.add_argument("--shape-steps", type=int, default=4, help="step: number of increments")
    group.add_argument("--shape-spike-factor", type=float, default=3.0, help="spike: multiple of base users")
    group.add_argument("--shape-period", type=float, default=60.0, help="diurnal: seconds per 'day'")
    group.add_argument(
        "--shape-hold",
        action="store_true",
        help="After the duration keep the last level until stopped (the engine stops the load); "
        "without it the test stops when the profile ends",
    )


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
        t = self.get_run_time()
        if o.run_time and t >= o.run_time:  # Locust leaves --run-time to a shape: it is the run's bound
            return None
        if o.shape_hold:
            t = min(t, profile.duration_s * (1 - 1e-9))  # the last level, for as long as the run lasts
        return profile.tick(t)

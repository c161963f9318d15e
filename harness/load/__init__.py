"""Load generation with Locust, always in Locust's own process(es).

`recorder`, `acks` and `users` run inside Locust (they import it, and importing Locust patches the
process with gevent); import them only from locustfiles, as `shapes` is. `process` starts and
stops Locust from the harness side and `verify` reads acknowledged writes back; both are safe
to import anywhere.

The public modules are not imported here, so importing this package never imports Locust.
"""

__all__ = ["acks", "process", "recorder", "shapes", "users", "verify"]

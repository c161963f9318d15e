"""Load generation with Locust, always in Locust's own process(es).

`recorder`, `acks` and `users` run inside Locust (they import it, and importing Locust patches the
process with gevent); import them only from locustfiles. `process` starts and stops Locust
from the harness side and is safe to import anywhere.
"""

"""Chaos Toolkit integration: the harness's own actions and probes (activities/)."""

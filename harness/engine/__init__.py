"""The engine: turns a plan into measured, scored, gated scenarios (runner), watching for
abort conditions (abort) and handling Ctrl-C and SIGTERM (stopping)."""

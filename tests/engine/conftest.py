"""The engine's tests on a testbed use the session's shared managed testbed and its shared
replica-kill run (tests/conftest.py)."""

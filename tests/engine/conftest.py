"""The engine's tests on a testbed use the session's shared managed one (tests/conftest.py)."""

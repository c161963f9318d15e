"""The engine's tests share one managed testbed per module (the fixture lives with the testbed tests)."""

from tests.testbed.conftest import managed  # noqa: F401

"""Say which kustomize rendered deploy/ (the real one or the fallback): in pytest's header when
tests/deploy is run by itself, and in the summary at the end of any run that collected it."""

from __future__ import annotations

from typing import Any

from tests.deploy.rendering import find_renderer


def pytest_report_header() -> list[str]:
    return [f"deploy/ rendered with: {find_renderer().detail}"]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"deploy/ rendered with: {find_renderer().detail}")

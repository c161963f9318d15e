"""Resilience Harness: chaos experiments under real-looking load, scored for what users felt."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("resilience-harness")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]

"""Chaos Toolkit activities (python provider) written by the harness."""

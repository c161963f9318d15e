"""Rendering results for people and CI systems: Markdown summary, JUnit XML (values in, text out)."""

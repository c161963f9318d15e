"""Rendering results for people and CI systems: the HTML report, the Markdown summary, JUnit XML."""

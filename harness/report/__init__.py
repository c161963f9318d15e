"""Rendering results for people and CI systems: the HTML report (html) of the values it is given
(inputs), the Markdown summary (markdown), JUnit XML (junit), and why a trial did not pass (why:
summary.md's section and `harness gate`'s lines).

The public modules are not imported here: the HTML report loads Jinja and its templates, which
the Markdown summary does not need.
"""

__all__ = ["html", "inputs", "junit", "markdown", "why"]

"""Packaging beyond pyproject.toml: the bundled plans, experiments and locustfiles go into the wheel.

They stay at the top of the checkout (experiments/, loadtests/), where `chaos run` and `locust -f`
take them as they are and plans name them by those paths; a wheel carries the same folders as
harness/_bundle/, where an installed harness looks for them (harness.plan.loading.BUNDLE_ROOT).
"""

from setuptools import find_packages, setup

BUNDLE = {"harness._bundle.experiments": "experiments", "harness._bundle.loadtests": "loadtests"}
"""Package name in the wheel → folder in the checkout."""

setup(
    packages=find_packages(include=["harness", "harness.*"]) + list(BUNDLE),
    package_dir=BUNDLE,
    package_data={
        "harness": ["py.typed", "report/templates/*", "report/static/*", "compare/templates/*"],
        **{name: ["**/*.yaml", "**/*.json", "**/*.md", "**/*.py"] for name in BUNDLE},
    },
)

"""Packaging beyond pyproject.toml: the bundled plans, experiments and locustfiles go into the wheel.

They stay at the top of the checkout (experiments/, loadtests/), where `chaos run` and `locust -f`
take them as they are and plans name them by those paths; a wheel carries the same folders as
harness/_bundle/, where an installed harness looks for them (harness.bundle.ROOT).
"""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
FOLDERS = {"harness._bundle.experiments": "experiments", "harness._bundle.loadtests": "loadtests"}
BUNDLE = {name: folder for name, folder in FOLDERS.items() if (HERE / folder).is_dir()}
"""Package name in the wheel → folder in the checkout; a build from the package alone (an image
layer copying harness/ first) goes on without them."""

setup(
    packages=find_packages(include=["harness", "harness.*"]) + list(BUNDLE),
    package_dir=BUNDLE,
    package_data={
        "harness": ["py.typed", "report/templates/*", "report/static/*", "compare/templates/*"],
        **{name: ["**/*.yaml", "**/*.json", "**/*.md", "**/*.py"] for name in BUNDLE},
    },
)

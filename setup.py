"""Packaging beyond pyproject.toml: the bundled connections ship as package data, found from the folders.

The repository's top-level templates/ and specs/ are mapped to connector/bundled/ in the wheel (read by
connector/bundle.py with importlib.resources). Every sub-folder becomes a package of data so a new
connection ships without editing a list; tests/packaging checks the wheel against the files git tracks.
"""

from setuptools import find_namespace_packages, setup

DATA = {"templates": ["*.yaml", "DEFAULT"], "specs": ["*.json"]}
packages = ["connector", "sandbox", "sandbox.families", "sandbox.extra_specs"]
package_data = {"sandbox.extra_specs": ["*.json"]}
for folder, patterns in DATA.items():
    root = f"connector.bundled.{folder}"
    for name in [root, *(f"{root}.{sub}" for sub in find_namespace_packages(where=folder))]:
        packages.append(name)
        package_data[name] = patterns

setup(
    packages=packages,
    package_dir={f"connector.bundled.{folder}": folder for folder in DATA},
    package_data=package_data,
)

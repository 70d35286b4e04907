"""Maps the top-level data folders into the package, so they work after `pip install .`.

DESIGN keeps `policies/`, `attestations/` and `reports/` at the top of the repository where
teams read and edit them; installed, they are `auditor.shipped.<name>` package data.
"""

from setuptools import find_packages, setup

SHIPPED = ("policies", "attestations", "reports")

setup(
    packages=[
        *find_packages(include=["auditor", "auditor.*"]),
        *(f"auditor.shipped.{n}" for n in SHIPPED),
    ],
    package_dir={f"auditor.shipped.{n}": n for n in SHIPPED},
    package_data={
        "auditor": ["py.typed", "schemas/*.json"],
        **{f"auditor.shipped.{n}": ["**/*"] for n in SHIPPED},
    },
)

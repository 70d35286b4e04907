"""The shipped data folders resolve from a checkout (and, via setup.py, from a wheel)."""

from __future__ import annotations

from auditor.shipped import shipped_path
from tests.conftest import PROJECT


def test_shipped_folders_resolve_to_the_top_level_folders_in_a_checkout() -> None:
    for name in ("policies", "attestations", "reports"):
        assert shipped_path(name).resolve() == (PROJECT / name).resolve()
        assert (shipped_path(name) / "README.md").is_file()

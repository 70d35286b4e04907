"""The data folders shipped with auditor: `policies/`, `attestations/`, `reports/`.

In a source checkout they are the top-level folders; installed, setup.py maps them here as
package data. `shipped_path` finds them either way.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def shipped_path(name: str) -> Path:
    """The folder `policies`, `attestations` or `reports` as shipped with this install."""
    installed = Path(str(resources.files(__name__))) / name
    if installed.is_dir():
        return installed
    return Path(__file__).resolve().parents[2] / name

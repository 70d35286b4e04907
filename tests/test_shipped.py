"""The shipped data folders resolve from a checkout (and, via setup.py, from a wheel)."""

from __future__ import annotations

import subprocess
import sys

from auditor.shipped import shipped_path
from tests.conftest import PROJECT


def test_shipped_folders_resolve_to_the_top_level_folders_in_a_checkout() -> None:
    for name in ("policies", "attestations", "reports"):
        assert shipped_path(name).resolve() == (PROJECT / name).resolve()
        assert (shipped_path(name) / "README.md").is_file()


def test_help_lists_every_command_without_loading_the_model_or_a_stage() -> None:
    # `auditor --help` is what a user runs first: it stays about as quick as Python itself
    script = (
        "import sys\n"
        "from auditor.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ['auditor.model', 'auditor.config', 'auditor.pipeline', 'yaml', 'kubernetes']\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert "admission" in done.stdout and "findings" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "[]"

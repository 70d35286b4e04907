"""Fixtures shared across the suite: real Git repositories and running the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.gitrepo import _ENV, GitRepo

PROJECT = Path(__file__).resolve().parents[1]
EXAMPLES = PROJECT / "examples"


@pytest.fixture
def git_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> GitRepo:
    for key, value in _ENV.items():
        monkeypatch.setenv(key, value)
    return GitRepo(tmp_path / "gitops")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


def run_cli(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> CliResult:
    """The installed CLI in a subprocess, exactly as a user or cron job runs it."""
    proc = subprocess.run(
        [sys.executable, "-m", "auditor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli() -> Iterator[object]:
    yield run_cli

"""Fixtures shared across the suite: real Git repositories and running the real CLI."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
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
    *args: str,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    max_memory_bytes: int | None = None,
    max_file_bytes: int | None = None,
) -> CliResult:
    """The installed CLI in a subprocess, exactly as a user or cron job runs it.

    `max_memory_bytes` caps its address space (and that of what it starts): a hostile input
    that the CLI fails to bound then ends in a failed test, not in a machine out of memory.
    `max_file_bytes` is the size past which no file it writes may grow (a disk with no room:
    the write fails with EFBIG, as SIGXFSZ is ignored).
    """
    proc = subprocess.run(
        [sys.executable, "-m", "auditor", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1", **(env or {})},
        preexec_fn=_limits(max_memory_bytes, max_file_bytes),
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """`auditor ARGS...` through the CLI's entry point in this process, every error turned
    into its exit code as a user sees it: for tests of what a command prints and its exit code,
    where starting a Python (a second or more of imports) costs more than the command. What
    main sets for the process (logging, the SIGTERM handler) is put back. Tests of what only a
    separate process shows (signals, logs on a terminal or not, memory limits) use run_cli."""
    import logging
    import signal

    from auditor.cli import main

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    on_term = signal.getsignal(signal.SIGTERM)
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        root.handlers, root.level = handlers, level
        signal.signal(signal.SIGTERM, on_term)
    out, err = capsys.readouterr()
    return CliResult(code, out, err)


def _limits(memory: int | None, file_size: int | None) -> Callable[[], None] | None:
    if memory is None and file_size is None:
        return None

    def apply() -> None:
        if memory is not None:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        if file_size is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # kept across exec: EFBIG instead
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))

    return apply


@pytest.fixture
def cli() -> Iterator[object]:
    yield run_cli

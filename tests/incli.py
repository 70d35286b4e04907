"""The CLI's own entry point called in this process, for tests of commands whose process
start is not what they show (a `run_cli` subprocess costs a second or more of imports)."""

from __future__ import annotations

import logging
import signal

import pytest

from auditor.cli import main
from tests.conftest import CliResult


def run_in_process(capsys: pytest.CaptureFixture[str], *args: str) -> CliResult:
    """`auditor ARGS...` through `auditor.cli.main` (every error turned into its exit code,
    as a user sees it), with what main sets for the process (logging, SIGTERM) put back."""
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

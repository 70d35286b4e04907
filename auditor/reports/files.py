"""Report files: the `--report FILE` of `auditor audit` (format from the suffix) and the
`--output FILE` of `auditor report`, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from auditor.errors import ConfigError
from auditor.model import RunReport
from auditor.reports.render import format_for_path, render


def check_report_path(path: str) -> None:
    """Refuses, before any work, a report path that cannot be written or whose suffix names
    no format: a folder, a parent that is a file, a folder without write permission, `.txt`.
    ConfigError (exit 2) naming the path: a run must never be stored as complete and then
    fail to report."""
    format_for_path(path)
    check_writable(path)


def check_writable(path: str) -> None:
    """ConfigError naming `path` when a file cannot be written there."""
    target = Path(path)
    if target.is_dir():
        raise ConfigError("the report path is a folder: name a file in it", file=path)
    parent = target.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent  # the folders up to here will be created
    if not parent.is_dir():
        raise ConfigError(f"cannot write the report: {parent} is not a folder", file=path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the report: no permission to write in {parent}", file=path)
    if target.exists() and not os.access(target, os.W_OK):
        raise ConfigError("cannot write the report: the file is read-only", file=path)


def write_report(report: RunReport, path: str) -> None:
    """Writes the report in the format `path`'s suffix names, creating its folder."""
    write_atomically(path, render(report, format_for_path(path)).encode("utf-8"))


def write_atomically(path: str, data: bytes) -> None:
    """A report file is either the old one or the whole new one, never half-written: a cron
    job's reader (a dashboard, a mail step) may open it while the next audit writes it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a write to the open file names none: say which report
            exc.filename = path
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["check_report_path", "check_writable", "write_atomically", "write_report"]

"""The `--report FILE` of `auditor audit`: the format its name asks for, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from auditor.errors import ConfigError
from auditor.model import AuditResult
from auditor.reports.documents import audit_document
from auditor.reports.markdown import render_markdown


def _render(result: AuditResult, path: str, *, fail_on: str) -> str:
    """The report text for `path`: the `-o json` document for `.json`, Markdown otherwise."""
    if path.endswith(".json"):
        return json.dumps(audit_document(result, fail_on=fail_on), indent=2, default=str)
    return render_markdown(result, fail_on=fail_on)


def check_report_path(path: str) -> None:
    """Refuses, before any work, a report path that cannot be written: a folder, a parent that
    is a file, a folder without write permission. ConfigError (exit 2) naming the path: a run
    must never be stored as complete and then fail to report."""
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


def write_report(result: AuditResult, path: str, *, fail_on: str) -> None:
    """Writes the report to `path`, creating its folder."""
    _write_atomically(path, _render(result, path, fail_on=fail_on))


def _write_atomically(path: str, text: str) -> None:
    """A report file is either the old one or the whole new one, never half-written: a cron
    job's reader (a dashboard, a mail step) may open it while the next audit writes it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


__all__ = ["check_report_path", "write_report"]

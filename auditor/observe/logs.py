"""Where logs go and what they look like: plain lines for a person at a terminal, one JSON object
a line (structlog) when stderr is not a terminal (a CronJob's pod log, a log shipper).

Verbosity: -q errors only and no progress; the default warnings and progress; -v adds info;
-vv debug, libraries included. `AUDITOR_LOG_FORMAT=json|text` overrides the terminal test.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Literal

LogFormat = Literal["json", "text"]
TEXT_FORMAT = "auditor: %(levelname)s: %(message)s"
PROGRESS_LOGGER = "auditor.progress"
FORMAT_VARIABLE = "AUDITOR_LOG_FORMAT"


def log_format() -> LogFormat:
    forced = os.environ.get(FORMAT_VARIABLE, "").strip().lower()
    if forced in ("json", "text"):
        return "json" if forced == "json" else "text"
    return "text" if sys.stderr.isatty() else "json"


def level_for(verbosity: int) -> int:
    """-q (-1) errors, 0 warnings, 1 info, 2 and more debug."""
    if verbosity < 0:
        return logging.ERROR
    return logging.WARNING - 10 * min(verbosity, 2)


def setup_logging(verbosity: int, fmt: LogFormat | None = None) -> None:
    """Configures the root logger for the process: one handler on stderr."""
    fmt = fmt or log_format()
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(_LazyJSONFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    # ours replaces ours (a second call), never a handler the embedding program put there
    root.handlers = [h for h in root.handlers if not isinstance(h, _StderrHandler)] + [handler]
    root.setLevel(level_for(verbosity))
    # progress is shown unless -q, whatever the level of the rest
    progress = logging.getLogger(PROGRESS_LOGGER)
    progress.setLevel(logging.INFO if verbosity >= 0 else logging.ERROR)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """auditor's own handler, told apart from others on the root logger."""


class _LazyJSONFormatter(logging.Formatter):
    """The structlog formatter, imported at the first record: structlog and what it brings
    (rich) are a third of the start-up of a command that logs nothing, as `auditor findings`
    in a pipe."""

    def __init__(self) -> None:
        super().__init__()
        self._formatter: logging.Formatter | None = None

    def format(self, record: logging.LogRecord) -> str:
        if self._formatter is None:
            self._formatter = _json_formatter()
        return self._formatter.format(record)


def _json_formatter() -> logging.Formatter:
    import structlog

    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
    )


__all__ = ["PROGRESS_LOGGER", "LogFormat", "level_for", "log_format", "setup_logging"]

"""Showing stage events: a live view per cluster and stage with rich on a terminal, one log line
per event elsewhere (JSON through `logs`), nothing with -q."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from auditor.observe.events import Progress, StageEvent, no_progress
from auditor.observe.logs import PROGRESS_LOGGER, log_format

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import TaskID

log = logging.getLogger(PROGRESS_LOGGER)
RUN_TASK = "run"  # the row of the run-wide stages (desired, policy, store)


def describe(event: StageEvent) -> str:
    """`cluster prod: live finished: 1234 resources, 0 errors (2.1 s)`."""
    where = f"cluster {event.cluster}: " if event.cluster else ""
    text = f"{where}{event.stage} {event.state}"
    if event.counts:
        text += ": " + ", ".join(f"{n} {name}" for name, n in event.counts.items())
    if event.reason:
        text += f" ({event.reason})"
    if event.seconds is not None:
        text += f" ({event.seconds:.1f} s)"
    return text


def log_event(event: StageEvent) -> None:
    """One log record per event, its fields as structured data for the JSON lines."""
    fields: dict[str, object] = {"stage": event.stage, "state": event.state}
    if event.cluster:
        fields["cluster"] = event.cluster
    fields.update(event.counts)
    if event.seconds is not None:
        fields["seconds"] = round(event.seconds, 3)
    if event.reason:
        fields["reason"] = event.reason
    level = logging.WARNING if event.state == "failed" or not _clean(event) else logging.INFO
    log.log(level, "%s", describe(event), extra=fields)


def _clean(event: StageEvent) -> bool:
    return event.state != "finished" or not event.counts.get("errors")


def announce_run(run_id: str, status: str) -> None:
    """The run's id and status at its end, on stderr: a plain line for a person, a JSON
    record (`run`, `status`) for a log shipper."""
    if log_format() == "json":
        log.info("run %s: %s", run_id, status, extra={"run": run_id, "status": status})
    else:
        sys.stderr.write(f"run {run_id}: {status}\n")


class LiveView:
    """rich's progress display: one row for the run-wide stages, one a cluster, each showing
    its current stage, then how it ended. Thread-safe: clusters may report concurrently."""

    def __init__(self, console: Console) -> None:
        from rich.progress import Progress as RichProgress
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = RichProgress(
            SpinnerColumn(finished_text="•"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._rows: dict[str, TaskID] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> LiveView:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            for task in self._rows.values():
                self._progress.update(task, total=1, completed=1)
        self._progress.stop()

    def __call__(self, event: StageEvent) -> None:
        from rich.markup import escape

        name = event.cluster or RUN_TASK
        mark = {"started": "…", "finished": "✓" if _clean(event) else "!", "failed": "✗"}
        text = f"[bold]{escape(name)}[/bold] {escape(event.stage)} {mark[event.state]}"
        counts = ", ".join(f"{n} {k}" for k, n in event.counts.items())
        if counts:
            text += f" {escape(counts)}"
        with self._lock:
            row = self._rows.get(name)
            if row is None:
                self._rows[name] = self._progress.add_task(text, total=None)
            else:
                self._progress.update(row, description=text)


@contextmanager
def showing_progress(verbosity: int, console: Console | None = None) -> Iterator[Progress]:
    """The listener that shows a run's progress for this verbosity and stderr."""
    if verbosity < 0:
        yield no_progress
        return
    if log_format() == "text" and (console is not None or _stderr_is_terminal()):
        from rich.console import Console as RichConsole

        with LiveView(console or RichConsole(stderr=True)) as view:
            yield view
        return
    yield log_event


def _stderr_is_terminal() -> bool:
    return sys.stderr.isatty()


__all__ = ["LiveView", "announce_run", "describe", "log_event", "showing_progress"]

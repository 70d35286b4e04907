"""One audit, watched: its progress shown, its stages recorded, and its metrics written to the
textfile and pushed to the Pushgateway when it ends, however it ends (a result, an error, a
signal). What `auditor audit` wraps around `run_audit`."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from auditor.errors import AuditorError
from auditor.exit_codes import ExitCode
from auditor.model import AuditResult, RunStatus
from auditor.observe.events import Progress, fan_out
from auditor.observe.metrics import (
    DEFAULT_JOB,
    RunMetrics,
    StageRecorder,
    check_metrics_file,
    check_pushgateway,
    push_metrics,
    write_metrics_file,
)
from auditor.observe.progress import showing_progress

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MetricsTargets:
    """Where a run's metrics go: a textfile, a Pushgateway, both or neither."""

    file: str | None = None
    pushgateway: str | None = None
    job: str = DEFAULT_JOB
    # Pushgateway grouping labels besides the job (a fleet shard's index, say)
    grouping: Mapping[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Refuses unusable targets before the run (exit 2), not after an hour of audit."""
        if self.file:
            check_metrics_file(self.file)
        if self.pushgateway:
            check_pushgateway(self.pushgateway)

    def export(self, metrics: RunMetrics) -> None:
        """Writes and pushes; a target that fails is logged, never the run's failure (an alert
        on the last-success metric notices metrics that stop arriving)."""
        if self.file:
            try:
                write_metrics_file(self.file, metrics)
            except OSError as exc:
                log.error("metrics file %s not written: %s", self.file, exc)
        if self.pushgateway:
            try:
                push_metrics(self.pushgateway, metrics, job=self.job, grouping=self.grouping)
            except OSError as exc:  # URLError and HTTPError are OSErrors
                log.error("metrics not pushed to %s: %s", self.pushgateway, exc)


@dataclass
class WatchedRun:
    progress: Progress
    recorder: StageRecorder
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    metrics: RunMetrics | None = None

    def finish(self, result: AuditResult, exit_code: int) -> None:
        self.metrics = RunMetrics.of_result(result, exit_code, self.recorder.ok)


@contextmanager
def watched_run(targets: MetricsTargets, verbosity: int) -> Iterator[WatchedRun]:
    """Yields the run's progress listener; call `finish` with the result. When the block
    raises, the run is reported `failed` (or `interrupted`) with the error's exit code."""
    targets.check()
    recorder = StageRecorder()
    with showing_progress(verbosity) as shown:
        watched = WatchedRun(progress=fan_out(shown, recorder), recorder=recorder)
        try:
            yield watched
        except BaseException as exc:
            status, code = _stopped(exc)
            watched.metrics = RunMetrics(
                status=status,
                exit_code=code,
                started=watched.started,
                finished=datetime.now(UTC),
                stages=dict(recorder.ok),
            )
            raise
        finally:
            if watched.metrics is not None:
                targets.export(watched.metrics)


def _stopped(exc: BaseException) -> tuple[RunStatus, int]:
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", int(getattr(exc, "exit_code", ExitCode.INTERRUPTED))
    if isinstance(exc, AuditorError):
        return "failed", int(exc.exit_code)
    if isinstance(exc, SystemExit):
        return "failed", int(exc.code) if isinstance(exc.code, int) else int(ExitCode.INTERNAL)
    return "failed", int(ExitCode.INTERNAL)


__all__ = ["MetricsTargets", "WatchedRun", "watched_run"]

"""A run as Prometheus metrics: for node-exporter's textfile collector (`--metrics-file`) and the
Pushgateway (`--pushgateway`), the two ways batch jobs report to Prometheus.

What alerts read (docs/operations.md): `auditor_last_success_timestamp_seconds`, the last run
that finished every stage (findings or not), which a failed or incomplete run never advances;
`auditor_run_exit_code`; `auditor_run_status`; `auditor_stage_ok` per stage and cluster.

prometheus_client is imported inside the functions: a run without these flags never loads it.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from auditor.errors import ConfigError
from auditor.model import SEVERITIES, AuditResult, RunStatus
from auditor.observe.events import StageEvent

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

log = logging.getLogger(__name__)

PREFIX = "auditor"
LAST_SUCCESS = f"{PREFIX}_last_success_timestamp_seconds"
CATEGORIES = ("drift", "provenance", "policy", "error")
RUN_STATUSES: tuple[RunStatus, ...] = ("complete", "incomplete", "failed", "interrupted")
RESOURCE_COUNTS = ("resources", "in_sync", "drifted", "missing", "unmanaged")
DEFAULT_JOB = "auditor"
PUSH_TIMEOUT_SECONDS = 10.0


class StageRecorder:
    """A progress listener that remembers how each stage (per cluster) ended."""

    def __init__(self) -> None:
        self.ok: dict[tuple[str, str], bool] = {}

    def __call__(self, event: StageEvent) -> None:
        if event.state != "started":
            self.ok[(event.stage, event.cluster)] = event.ok


@dataclass(frozen=True, slots=True)
class RunMetrics:
    """What one run reports, whether it ended with a result or an error."""

    status: RunStatus
    exit_code: int
    started: datetime
    finished: datetime
    stages: Mapping[tuple[str, str], bool] = field(default_factory=dict)
    findings: Mapping[tuple[str, str], int] = field(default_factory=dict)  # (category, severity)
    resources: Mapping[str, int] = field(default_factory=dict)
    clusters: int = 0

    @property
    def succeeded(self) -> bool:
        """Every stage finished: the audit's answer is whole (it may still hold findings)."""
        return self.status == "complete"

    @classmethod
    def of_result(
        cls, result: AuditResult, exit_code: int, stages: Mapping[tuple[str, str], bool]
    ) -> RunMetrics:
        run = result.run
        return cls(
            status=run.status,
            exit_code=exit_code,
            started=run.started,
            finished=run.finished or run.started,
            stages=dict(stages),
            findings=Counter((f.category, f.severity) for f in result.findings),
            resources={k: int(run.counts.get(k, 0)) for k in RESOURCE_COUNTS},
            clusters=len(run.clusters),
        )


def registry_of(metrics: RunMetrics, *, last_success: float | None) -> CollectorRegistry:
    """The run's metrics. `last_success`: the time of the last successful run, carried over
    when this one did not succeed (None: never, or unknown)."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()

    def gauge(name: str, doc: str, labels: Iterable[str] = ()) -> Gauge:
        return Gauge(f"{PREFIX}_{name}", doc, list(labels), registry=registry)

    gauge("run_duration_seconds", "Wall-clock time of the last run").set(
        (metrics.finished - metrics.started).total_seconds()
    )
    gauge("run_exit_code", "Exit code of the last run (0 clean, 1 findings, 3 incomplete)").set(
        metrics.exit_code
    )
    status = gauge("run_status", "1 for the last run's status", ["status"])
    for name in RUN_STATUSES:
        status.labels(status=name).set(1 if metrics.status == name else 0)
    gauge("last_run_timestamp_seconds", "When the last run finished").set(
        metrics.finished.timestamp()
    )
    success = metrics.finished.timestamp() if metrics.succeeded else last_success
    if success is not None:
        gauge(
            LAST_SUCCESS.removeprefix(f"{PREFIX}_"),
            "When the last run that finished every stage finished",
        ).set(success)
    findings = gauge("findings", "Findings of the last run", ["category", "severity"])
    for category in CATEGORIES:
        for severity in SEVERITIES:
            findings.labels(category, severity).set(metrics.findings.get((category, severity), 0))
    stage_ok = gauge(
        "stage_ok",
        "1 when the stage finished with nothing missing, 0 when it failed or left something "
        "unread (cluster is empty for run-wide stages)",
        ["stage", "cluster"],
    )
    for (stage_name, cluster), ok in sorted(metrics.stages.items()):
        stage_ok.labels(stage_name, cluster).set(1 if ok else 0)
    if metrics.resources:
        resources = gauge("resources", "Resources compared by the last run", ["status"])
        for status_name, count in metrics.resources.items():
            resources.labels(status_name).set(count)
    gauge("clusters", "Clusters the last run read").set(metrics.clusters)
    return registry


def check_metrics_file(path: str) -> None:
    """Refuses, before the audit runs, a path the textfile collector would never read."""
    if not path.endswith(".prom"):
        raise ConfigError(
            f"{path}: node-exporter's textfile collector reads only files ending in .prom",
            key="--metrics-file",
        )
    parent = Path(path).parent
    if not parent.is_dir():
        raise ConfigError(f"{path}: the folder {parent} does not exist", key="--metrics-file")


def check_pushgateway(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(
            f"{url}: give the Pushgateway's http:// or https:// URL", key="--pushgateway"
        )


def last_success_in_file(path: str) -> float | None:
    """The last-success time a previous run wrote to the metrics file, if any."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = Path(path).read_text(encoding="utf-8")
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == LAST_SUCCESS:
                    return float(sample.value)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("metrics file %s: previous last-success time unreadable: %s", path, exc)
    return None


def write_metrics_file(path: str, metrics: RunMetrics) -> None:
    """Writes the run's metrics to `path` atomically (a temporary file renamed over it), so the
    collector never reads half a file; the last success carries over from the old file."""
    from prometheus_client import write_to_textfile

    previous = None if metrics.succeeded else last_success_in_file(path)
    write_to_textfile(path, registry_of(metrics, last_success=previous))
    os.chmod(path, 0o644)  # node-exporter runs as another user


def push_metrics(
    url: str,
    metrics: RunMetrics,
    *,
    job: str = DEFAULT_JOB,
    grouping: Mapping[str, str] | None = None,
) -> None:
    """Pushes the run's metrics to the Pushgateway under `job` (and `grouping`, labels that
    tell apart runs that must not replace each other's metrics, e.g. a fleet's shards). A
    successful run replaces the group (PUT); any other pushes without a last-success time and
    replaces only what it sends (POST), so the Pushgateway keeps the last success it had."""
    from prometheus_client import push_to_gateway, pushadd_to_gateway

    registry = registry_of(metrics, last_success=None)
    send = push_to_gateway if metrics.succeeded else pushadd_to_gateway
    send(
        url,
        job=job,
        registry=registry,
        grouping_key=dict(grouping or {}),
        timeout=PUSH_TIMEOUT_SECONDS,
    )


__all__ = [
    "LAST_SUCCESS",
    "RunMetrics",
    "StageRecorder",
    "check_metrics_file",
    "check_pushgateway",
    "push_metrics",
    "registry_of",
    "write_metrics_file",
]

"""The webhook's Prometheus metrics: decisions by result, latency, cache hits, errors.

With several server workers each is its own process: `auditor admission serve` then points
PROMETHEUS_MULTIPROC_DIR at a folder of its own before the workers start, prometheus-client
keeps every worker's values there, and `/metrics` (served by whichever worker takes the
scrape) adds them up. The cache hit ratio is
`rate(auditor_admission_cache_lookups_total{result="hit"}[5m])` over all lookups.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from auditor.model import AdmissionDecision

DECISIONS = Counter(
    "auditor_admission_decisions",
    "Admission decisions, by result (allow, deny, skip, error, fail_open)",
    ["result", "operation"],
)
# Buckets around the targets: a cached answer in a few ms, an uncached one under 100 ms,
# and the time budget (seconds).
LATENCY = Histogram(
    "auditor_admission_decision_seconds",
    "Time from a review's arrival to its answer",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
CACHE = Counter(
    "auditor_admission_cache_lookups",
    "Provenance verification cache lookups, by result (hit, miss)",
    ["result"],
)
ERRORS = Counter(
    "auditor_admission_errors",
    "Requests and decisions that went wrong, by kind (bad_request, too_large, internal, "
    "timeout, store, dropped)",
    ["kind"],
)


def observe(decision: AdmissionDecision) -> None:
    DECISIONS.labels(decision.result, decision.request.operation).inc()
    LATENCY.observe(decision.latency_ms / 1000)
    if decision.cache:
        CACHE.labels(decision.cache).inc()


def exposition() -> tuple[bytes, str]:
    """The metrics text, every worker's when they share a multiprocess folder."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST


__all__ = ["CACHE", "DECISIONS", "ERRORS", "LATENCY", "exposition", "observe"]

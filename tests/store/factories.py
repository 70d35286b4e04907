"""Plain test values for the store tests, shared with the subprocess in child.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from auditor.model import ChangedBy, ClusterInfo, Finding, ResourceRef, Run, RunStatus
from auditor.store import ResourceRecord

T0 = datetime(2026, 11, 23, 16, 56, tzinfo=UTC)


def ref(name: str = "fraud-scorer", *, kind: str = "InferenceService") -> ResourceRef:
    return ResourceRef("prod-eu", "serving.kserve.io/v1beta1", kind, "ml", name)


def make_run(
    run_id: str,
    *,
    minutes: int = 0,
    status: RunStatus = "complete",
    counts: Mapping[str, int] | None = None,
) -> Run:
    started = T0 + timedelta(minutes=minutes)
    return Run(
        id=run_id,
        trigger="cron",
        started=started,
        finished=started + timedelta(seconds=42),
        status=status,
        git_repo="https://git.example.com/acme/serving.git",
        git_revision="main",
        git_commit="9f1c2e3d4b5a69788796a5b4c3d2e1f0a9b8c7d6",
        clusters=(ClusterInfo("prod-eu", server="https://10.0.0.1:6443", context="prod-eu"),),
        counts=counts if counts is not None else {"resources": 1, "drifted": 1},
    )


def make_finding(
    name: str = "fraud-scorer",
    *,
    path: str = "/spec/predictor/model/storageUri",
    severity: str = "critical",
    expected: Any = "gs://models/fraud/v3",
    actual: Any = "gs://models/fraud/v4",
    message: str | None = None,
) -> Finding:
    target = ref(name)
    return Finding(
        category="drift",
        check="drift.changed",
        severity=severity,  # type: ignore[arg-type]
        ref=target,
        path=path,
        message=message or f"{target.display()}: {path} {expected!r} in Git, {actual!r} live",
        expected=expected,
        actual=actual,
        drift_class="model",
        changed_by=ChangedBy("kubectl-edit", "Update", "2026-11-23T02:13:00Z"),
        details={"diff": {"from": expected, "to": actual}},
        controls=("SOC2-CC8.1",),
    )


def make_record(name: str = "fraud-scorer", status: str = "drifted") -> ResourceRecord:
    return ResourceRecord(ref(name), status, "apps/fraud.yaml@9f1c2e3", "sha256:" + "ab" * 32)

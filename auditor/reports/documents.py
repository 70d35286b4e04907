"""The JSON documents of DESIGN "Commands and machine-readable output"."""

from __future__ import annotations

import dataclasses
from typing import Any

from auditor.model import AuditResult, result_counts


def _status(result: AuditResult) -> str:
    if not result.complete:
        return "incomplete"
    return "drifted" if any(f.category == "drift" for f in result.findings) else "in_sync"


def drift_document(result: AuditResult) -> dict[str, Any]:
    """`auditor drift -o json`."""
    run = result.run
    return {
        "commit": run.git_commit,
        "status": _status(result),
        "summary": dataclasses.asdict(result.summary),
        "findings": [f.to_json() for f in result.findings],
        "repo": run.git_repo,
        "revision": run.git_revision,
        "clusters": [c.to_json() for c in run.clusters],
        "errors": [e.to_json() for e in result.errors],
        "notes": list(result.notes),
    }


def audit_document(result: AuditResult, *, fail_on: str) -> dict[str, Any]:
    """`auditor audit -o json`: the drift document plus the run it was stored as."""
    run = result.run
    doc = drift_document(result)
    doc["run"] = {
        "id": run.id,
        "trigger": run.trigger,
        "status": run.status,
        "started": run.started.isoformat(),
        "finished": run.finished.isoformat() if run.finished else None,
        "counts": dict(run.counts),
        "fail_on": fail_on,
        "exit_code": result.audit_exit_code(fail_on),
    }
    doc["policy"] = {"evaluated": len(result.evaluations), **result_counts(result.evaluations)}
    return doc

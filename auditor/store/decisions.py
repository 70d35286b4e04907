"""The webhook's decisions in `admission_decisions`: written in batches, read back newest first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from auditor.model import AdmissionDecision
from auditor.store.schema import now_timestamp, utc_timestamp, write_transaction

TABLE = "admission_decisions"


def _row(decision: AdmissionDecision) -> dict[str, Any]:
    request = decision.request
    api_version = f"{request.group}/{request.version}" if request.group else request.version
    return {
        "time": utc_timestamp(decision.time) if decision.time else now_timestamp(),
        "uid": request.uid,
        "cluster": decision.cluster,
        "api_version": api_version,
        "kind": request.kind,
        "namespace": request.namespace,
        "name": request.name,
        "operation": request.operation,
        "user": request.user,
        "dry_run": int(request.dry_run),
        "allowed": int(decision.allowed),
        "result": decision.result,
        "reasons": json.dumps([r.to_json() for r in decision.reasons]),
        "warnings": json.dumps(list(decision.warnings)),
        "latency_ms": round(decision.latency_ms, 3),
        "commit_sha": decision.commit,
        "cache": decision.cache,
    }


def record_decisions(db: Database, decisions: Sequence[AdmissionDecision]) -> None:
    """Every decision of a batch, in one transaction."""
    if not decisions:
        return
    with write_transaction(db):
        db.table(TABLE).insert_all([_row(d) for d in decisions])


def decisions(
    db: Database,
    *,
    denied_only: bool = False,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Decisions newest first, reasons and warnings as lists."""
    where, params = [], []
    if denied_only:
        where.append("allowed = 0")
    if since is not None:
        where.append("time >= ?")
        params.append(utc_timestamp(since))
    sql = f"SELECT * FROM {TABLE}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY time DESC, id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    rows = []
    for row in db.query(sql, params):
        row["reasons"] = json.loads(row["reasons"] or "[]")
        row["warnings"] = json.loads(row["warnings"] or "[]")
        row["allowed"] = bool(row["allowed"])
        row["dry_run"] = bool(row["dry_run"])
        rows.append(row)
    return rows


__all__ = ["decisions", "record_decisions"]

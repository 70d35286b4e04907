"""The webhook's decisions in `admission_decisions`: written in batches, read back newest first,
and summed up between two runs for a run's report."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from auditor.defaults import DECISION_RESULTS
from auditor.model import (
    AdmissionDecision,
    AdmissionSummary,
    DecisionReason,
    StoredDecision,
)
from auditor.store.schema import now_timestamp, utc_timestamp, write_transaction
from auditor.store.values import parse_time

TABLE = "admission_decisions"
# Denials a report lists by name; the counts cover every decision of the window.
LATEST_DENIALS = 20


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


COLUMNS = (
    "time", "uid", "cluster", "api_version", "kind", "namespace", "name", "operation", "user",
    "dry_run", "allowed", "result", "reasons", "warnings", "latency_ms", "commit_sha", "cache",
)  # fmt: skip
# One prepared statement: the webhook's writer thread shares the GIL with the server, and
# sqlite-utils' insert_all looks the table's columns up again on every batch.
INSERT = f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"


def record_decisions(db: Database, decisions: Sequence[AdmissionDecision]) -> None:
    """Every decision of a batch, in one transaction."""
    if not decisions:
        return
    rows = [tuple(row[c] for c in COLUMNS) for row in map(_row, decisions)]
    with write_transaction(db):
        db.conn.executemany(INSERT, rows)


def _where(
    *,
    denied_only: bool = False,
    results: Sequence[str] = (),
    namespace: str | None = None,
    since: datetime | None = None,
    after: datetime | None = None,
    until: datetime | None = None,
    clusters: Sequence[str] | None = None,
) -> tuple[str, list[Any]]:
    """The WHERE clause (with its parameters) of the filters every reader of decisions shares:
    `since` is inclusive (a date given by a person), `after` exclusive (a window's start)."""
    where: list[str] = []
    params: list[Any] = []
    if denied_only:
        where.append("allowed = 0")
    if results:
        where.append(f"result IN ({', '.join('?' for _ in results)})")
        params += list(results)
    if namespace is not None:
        where.append("namespace GLOB ?")  # a glob, like every namespace pattern in config
        params.append(namespace)
    for column, op, moment in (("time", ">=", since), ("time", ">", after), ("time", "<=", until)):
        if moment is not None:
            where.append(f"{column} {op} ?")
            params.append(utc_timestamp(moment))
    if clusters is not None:
        # a decision without a cluster name (a webhook config with no clusters) belongs to any
        where.append(f"cluster IN ({', '.join('?' for _ in (*clusters, ''))})")
        params += [*clusters, ""]
    return (" WHERE " + " AND ".join(where)) if where else "", params


def decisions(
    db: Database,
    *,
    denied_only: bool = False,
    results: Sequence[str] = (),
    namespace: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Decisions newest first, reasons and warnings as lists. `namespace` is a glob."""
    where, params = _where(
        denied_only=denied_only, results=results, namespace=namespace, since=since
    )
    sql = f"SELECT * FROM {TABLE}{where} ORDER BY time DESC, id DESC"
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


def decision_of(row: dict[str, Any]) -> StoredDecision:
    """A row of `decisions()` as a model value."""
    return StoredDecision(
        time=parse_time(row["time"]) or datetime.min.replace(tzinfo=UTC),
        cluster=row["cluster"] or "",
        api_version=row["api_version"] or "",
        kind=row["kind"],
        namespace=row["namespace"] or "",
        name=row["name"] or "",
        operation=row["operation"],
        user=row["user"] or "",
        dry_run=bool(row["dry_run"]),
        result=row["result"],
        reasons=tuple(DecisionReason(r["check"], r["message"]) for r in row["reasons"]),
        commit=row["commit_sha"] or "",
    )


def summary(
    db: Database,
    *,
    after: datetime | None,
    until: datetime | None,
    clusters: Sequence[str],
    latest: int = LATEST_DENIALS,
) -> AdmissionSummary | None:
    """The decisions in (`after`, `until`] on `clusters`: counts by result, commits used and
    the `latest` denials; None when the store holds no decision at all (no webhook writes
    to it, which a report says by leaving the section out)."""
    if next(iter(db.query(f"SELECT 1 FROM {TABLE} LIMIT 1")), None) is None:
        return None
    where, params = _where(after=after, until=until, clusters=clusters)
    counts: dict[str, int] = dict.fromkeys(DECISION_RESULTS, 0)
    commits: dict[str, int] = {}
    for row in db.query(
        f"SELECT result, commit_sha, count(*) AS n FROM {TABLE}{where}"
        " GROUP BY result, commit_sha ORDER BY commit_sha",
        params,
    ):
        counts[row["result"]] = counts.get(row["result"], 0) + row["n"]
        commit = row["commit_sha"] or ""
        commits[commit] = commits.get(commit, 0) + row["n"]
    where, params = _where(denied_only=True, after=after, until=until, clusters=clusters)
    rows = list(
        db.query(
            f"SELECT * FROM {TABLE}{where} ORDER BY time DESC, id DESC LIMIT ?", [*params, latest]
        )
    )
    for row in rows:
        row["reasons"] = json.loads(row["reasons"] or "[]")
    return AdmissionSummary(
        since=after,
        until=until,
        counts=counts,
        commits=commits,
        denials=tuple(decision_of(r) for r in rows),
        denials_total=counts.get("deny", 0) + counts.get("error", 0),
    )


__all__ = ["LATEST_DENIALS", "decision_of", "decisions", "record_decisions", "summary"]

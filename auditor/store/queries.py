"""Reading runs and findings back: plain dicts with their JSON columns decoded.

Rows keep the table's column names, so what a report gets from here is what a person gets
from `sqlite3 store.db 'select * from findings'`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlite_utils import Database

from auditor.model import SEVERITIES

CATEGORIES = ("drift", "provenance", "policy", "error")
LATEST = "latest"

_JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": ("clusters", "counts"),
    "findings": ("expected", "actual", "details", "controls"),
    "evaluations": ("messages",),
    "attestations": ("details",),
}

# Most severe first; SQL cannot sort by a Python tuple, so the rank is spelled out once here.
_SEVERITY_ORDER = (
    "CASE severity "
    + " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(SEVERITIES))
    + f" ELSE {len(SEVERITIES)} END"
)
_FINDING_ORDER = f"{_SEVERITY_ORDER}, cluster, kind, namespace, name, path, check_id, id"


def _decode(rows: Iterable[dict[str, Any]], table: str) -> list[dict[str, Any]]:
    columns = _JSON_COLUMNS[table]
    decoded = []
    for row in rows:
        for column in columns:
            if row.get(column) is not None:
                row[column] = json.loads(row[column])
        decoded.append(row)
    return decoded


def resolve_run_id(db: Database, run_id: str) -> str | None:
    """`run_id` itself, or the id of the latest finished run for "latest" (None if none)."""
    if run_id != LATEST:
        return run_id
    row = db.execute("SELECT id FROM latest_run").fetchone()
    return row[0] if row else None


def runs(db: Database, limit: int | None = None) -> list[dict[str, Any]]:
    """Every run, newest first, unfinished (killed or running) ones included."""
    rows = db.table("runs").rows_where(order_by="started DESC, id DESC", limit=limit)
    return _decode(rows, "runs")


def run(db: Database, run_id: str) -> dict[str, Any] | None:
    """One run by id, or the latest finished run for "latest"; None when there is none."""
    resolved = resolve_run_id(db, run_id)
    if resolved is None:
        return None
    rows = _decode(db.table("runs").rows_where("id = ?", [resolved]), "runs")
    return rows[0] if rows else None


def findings(
    db: Database,
    run_id: str | None = None,
    *,
    open_only: bool = False,
    severity: str | None = None,
    category: str | None = None,
) -> list[dict[str, Any]]:
    """Findings, most severe first.

    `run_id` (or "latest") limits them to one run; without it, every run's findings.
    `open_only` keeps findings still present in the latest finished run, and without a
    `run_id` means that run. `severity` and `category` are exact matches.
    """
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}: one of {', '.join(SEVERITIES)}")
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}: one of {', '.join(CATEGORIES)}")
    if open_only and run_id is None:
        run_id = LATEST
    where: list[str] = []
    params: list[Any] = []
    if run_id is not None:
        resolved = resolve_run_id(db, run_id)
        if resolved is None:
            return []
        where.append("run_id = ?")
        params.append(resolved)
    if open_only:
        where.append("fingerprint IN (SELECT fingerprint FROM open_findings)")
    if severity is not None:
        where.append("severity = ?")
        params.append(severity)
    if category is not None:
        where.append("category = ?")
        params.append(category)
    rows = db.table("findings").rows_where(
        " AND ".join(where) if where else None, params, order_by=_FINDING_ORDER
    )
    return _decode(rows, "findings")


def finding_history(db: Database, fingerprint: str) -> dict[str, Any] | None:
    """first_seen, last_seen, open_since (None once fixed) and runs_seen of one fingerprint."""
    rows = list(db.view("finding_history").rows_where("fingerprint = ?", [fingerprint]))
    return rows[0] if rows else None


def errors(db: Database, run_id: str) -> list[dict[str, Any]]:
    """What the stages of one run (or "latest") could not do, in the order they reported it."""
    resolved = resolve_run_id(db, run_id)
    if resolved is None:
        return []
    return list(db.table("errors").rows_where("run_id = ?", [resolved], order_by="id"))


def resources(db: Database, run_id: str) -> list[dict[str, Any]]:
    """The resources one run (or "latest") looked at, with their verdicts."""
    resolved = resolve_run_id(db, run_id)
    if resolved is None:
        return []
    return list(
        db.table("resources").rows_where(
            "run_id = ?", [resolved], order_by="cluster, kind, namespace, name, id"
        )
    )


def _run_rows(db: Database, table: str, run_id: str, order_by: str) -> list[dict[str, Any]]:
    resolved = resolve_run_id(db, run_id)
    if resolved is None:
        return []
    rows = db.table(table).rows_where("run_id = ?", [resolved], order_by=order_by)
    return _decode(rows, table)


def evaluations(db: Database, run_id: str) -> list[dict[str, Any]]:
    """Every policy x resource result of one run (or "latest"), pass included."""
    return _run_rows(db, "evaluations", run_id, "policy, cluster, kind, namespace, name, id")


def attestations(db: Database, run_id: str) -> list[dict[str, Any]]:
    """Every verification one run (or "latest") made, failed ones included."""
    return _run_rows(db, "attestations", run_id, "cluster, kind, namespace, name, id")

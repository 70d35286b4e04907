"""Reading runs and findings back.

Row functions return plain dicts with their JSON columns decoded, keeping the view's column
names, so what a script gets from here is what a person gets from
`sqlite3 store.db 'select * from findings'`. `known_findings` and `finding_sightings` return
model values for `auditor findings` and `auditor history`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypedDict, Unpack

from sqlite_utils import Database

from auditor.gc_pause import gc_paused
from auditor.model import SEVERITIES, FindingHistory, ReportFinding, Run
from auditor.store.keys import stored_fingerprint
from auditor.store.schema import utc_timestamp
from auditor.store.values import (
    FINDING_COLUMNS,
    HISTORY_COLUMNS,
    finding_from,
    finding_of,
    history_from,
    history_of,
    parse_time,
    report_finding,
    run_of,
)

CATEGORIES = ("drift", "provenance", "policy", "error")
LATEST = "latest"

_JSON_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": ("clusters", "counts"),
    "findings": ("expected", "actual", "details", "controls"),
    "evaluations": ("messages",),
    "attestations": ("details",),
}

# Most severe first; SQL cannot sort by a Python tuple, so the rank is spelled out once here.
SEVERITY_ORDER = (
    "CASE severity "
    + " ".join(f"WHEN '{name}' THEN {rank}" for rank, name in enumerate(SEVERITIES))
    + f" ELSE {len(SEVERITIES)} END"
)
_FINDING_ORDER = f"{SEVERITY_ORDER}, cluster, kind, namespace, name, path, check_id"


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


def _check_filters(severity: str | None, category: str | None) -> None:
    if severity is not None and severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}: one of {', '.join(SEVERITIES)}")
    if category is not None and category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}: one of {', '.join(CATEGORIES)}")


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
    `open_only` keeps findings still open (see `auditor.store.history`); without a `run_id`
    it lists each open finding once, as last seen.
    """
    _check_filters(severity, category)
    where: list[str] = []
    params: list[Any] = []
    view = "findings"
    if run_id is not None:
        resolved = resolve_run_id(db, run_id)
        if resolved is None:
            return []
        where.append("run_id = ?")
        params.append(resolved)
        if open_only:
            where.append("fingerprint IN (SELECT fingerprint FROM open_findings)")
    elif open_only:
        view = _OPEN_WITH_VALUES
    if severity is not None:
        where.append("severity = ?")
        params.append(severity)
    if category is not None:
        where.append("category = ?")
        params.append(category)
    sql = f"SELECT * FROM {view}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    rows = [dict(row) for row in db.query(sql + f" ORDER BY {_FINDING_ORDER}", params)]
    return _decode(rows, "findings")


# Each open finding once, with every column of its last sighting in `findings`: one join, not
# a query per finding.
_OPEN_WITH_VALUES = """(
    SELECT v.fingerprint, v.category, v.check_id, v.severity, v.class, v.cluster,
        v.api_version, v.kind, v.namespace, v.name, v.path, v.message,
        s.first_seen, s.last_seen, s.runs_seen, s.open_since, s.resolved_at,
        'open' AS status, runs.id AS run_id, v.expected, v.actual, v.changed_by_manager,
        v.changed_by_operation, v.changed_by_time, v.details, v.controls
    FROM fingerprints s
    JOIN finding_values v ON v.id = s.last_content
    LEFT JOIN runs ON runs.seq = s.last_run
    WHERE s.resolved_at IS NULL AND s.last_run IS NOT NULL
)"""


def finding_history(db: Database, fingerprint: str) -> dict[str, Any] | None:
    """first_seen, last_seen, runs_seen, open_since (None once resolved), resolved_at and
    status of one fingerprint; None for a fingerprint the store never saw."""
    rows = list(
        db.query(
            "SELECT ? AS fingerprint, first_seen, last_seen, runs_seen, open_since, resolved_at,"
            " CASE WHEN resolved_at IS NULL THEN 'open' ELSE 'resolved' END AS status"
            " FROM fingerprints WHERE fingerprint = ? AND last_run IS NOT NULL",
            [fingerprint, stored_fingerprint(fingerprint)],
        )
    )
    return rows[0] if rows else None


_KNOWN = """
SELECT v.*, s.first_seen, s.last_seen, s.runs_seen, s.open_since, s.resolved_at
FROM fingerprints s
JOIN finding_values v ON v.id = s.last_content
"""


# The values of every known finding as known_findings reads them (bench/store reads them too).
# The fingerprint as stored (16 bytes, made hex by `finding_from`): SQLite's hex() of 10,000
# of them is a tenth of the time of the whole query.
KNOWN_VALUES = (
    "SELECT "
    + ", ".join("s.fingerprint" if c == "fingerprint" else f"v.{c}" for c in FINDING_COLUMNS)
    + ", "
    + ", ".join(f"s.{c}" for c in HISTORY_COLUMNS)
    + " FROM fingerprints s JOIN finding_values v ON v.id = s.last_content"
)


class KnownFilters(TypedDict, total=False):
    """Which known findings a reader returns (every one when none is given)."""

    open_only: bool
    severity: str | None
    category: str | None
    check: str | None  # a glob: `drift.*`, a policy id
    since: datetime | None  # first seen at or after it
    cluster: str | None
    namespace: str | None  # a glob, like every namespace pattern in config


def _known_filters(
    filters: KnownFilters, columns: Mapping[str, str] | None = None
) -> tuple[str, list[Any]]:
    """The WHERE and ORDER BY of a query over `fingerprints s` and a finding's values:
    known findings, most severe first, then by object, path and check. `columns` spells the
    values (default: the columns of `finding_values v`)."""
    unknown = sorted(filters.keys() - KnownFilters.__optional_keys__)
    if unknown:  # what a type checker would say: a misspelt filter must not widen the answer
        raise TypeError(
            f"unknown filter {unknown[0]!r}: one of {sorted(KnownFilters.__optional_keys__)}"
        )
    severity, category = filters.get("severity"), filters.get("category")
    _check_filters(severity, category)

    def column(name: str) -> str:
        return columns[name] if columns else f"v.{name}"

    where: list[str] = ["s.last_run IS NOT NULL"]
    params: list[Any] = []
    if filters.get("open_only"):
        where.append("s.resolved_at IS NULL")
    for name, test, value in (
        ("severity", "= ?", severity),
        ("category", "= ?", category),
        ("check_id", "GLOB ?", filters.get("check")),
        ("cluster", "= ?", filters.get("cluster")),
        ("namespace", "GLOB ?", filters.get("namespace")),
    ):
        if value is not None:
            where.append(f"{column(name)} {test}")
            params.append(value)
    since = filters.get("since")
    if since is not None:
        where.append("s.first_seen >= ?")
        params.append(utc_timestamp(since))
    order = ", ".join(
        [
            SEVERITY_ORDER.replace("severity", column("severity")),
            *map(column, ("cluster", "kind", "namespace", "name", "path", "check_id")),
            # as stored: 16 bytes order as their hex does, without making it for every row
            "s.fingerprint",
        ]
    )
    return f" WHERE {' AND '.join(where)} ORDER BY {order}", params


def known_findings(db: Database, **filters: Unpack[KnownFilters]) -> list[ReportFinding]:
    """Every finding the store knows, once each as last seen, with its history; most severe
    first. `since` keeps those first seen at or after it."""
    where, params = _known_filters(filters)
    # Plain tuples in a known order, not a dict per row: building the values is most of the
    # time of reading every open finding.
    rows = db.conn.execute(KNOWN_VALUES + where, params)
    width = len(FINDING_COLUMNS)
    # Findings seen by the same runs share one history value (frozen): most open findings have
    # been seen since the same run, so it is made once, not once a finding.
    histories: dict[tuple[Any, ...], FindingHistory] = {}
    known = []
    # Tens of thousands of new objects, none in a cycle: each burst of them would start a
    # collection that walks everything alive (an eighth of this function's time).
    with gc_paused():
        for row in rows:
            kept = row[width:]
            history = histories.get(kept)
            if history is None:
                history = histories[kept] = history_from(kept)
            known.append(report_finding(finding_from(row[:width]), history))
    return known


class FindingLine(NamedTuple):
    """What a line of `auditor findings` shows of a known finding: no more is read."""

    severity: str
    check: str
    cluster: str
    kind: str
    namespace: str
    name: str
    path: str
    message: str
    fingerprint: str
    first_seen: datetime
    runs_seen: int
    open_since: datetime | None
    resolved_at: datetime | None

    @property
    def status(self) -> str:
        return "resolved" if self.resolved_at is not None else "open"


# The values of `finding_values` a line shows, read from the tables themselves: the view
# joins `fingerprints` a second time and carries every column, which doubles the time of
# reading 10,000 open findings. The same expressions as the view's (m0006, m0008);
# tests/store/test_known_findings_read.py holds the two to the same values.
_DISPLAY = (
    "o.kind || ' ' || CASE WHEN o.namespace != '' THEN o.namespace || '/' ELSE '' END || o.name"
)
_MSG = "json_extract(fc.details, '$.message.msg')"
_LINE_COLUMNS = {
    "severity": "fc.severity",
    "category": "COALESCE(fc.category, 'policy')",
    "check_id": "COALESCE(fc.check_id, p.policy)",
    "cluster": "o.cluster",
    "kind": "o.kind",
    "namespace": "o.namespace",
    "name": "o.name",
    "path": "CASE WHEN fc.path IS NULL AND fc.policy IS NOT NULL"
    " THEN json_extract(fc.details, '$.message.path') ELSE fc.path END",
    "message": f"CASE fc.message_form WHEN 1 THEN {_DISPLAY} || ': ' || {_MSG}"
    f" WHEN 2 THEN {_MSG} ELSE fc.message END",
    "fingerprint": "CASE WHEN typeof(s.fingerprint) = 'blob' THEN lower(hex(s.fingerprint))"
    " ELSE s.fingerprint END",
}
_LINE_VALUES = f"""
SELECT {", ".join(_LINE_COLUMNS[c] for c in ("severity", "check_id", "cluster", "kind"))},
    {_LINE_COLUMNS["namespace"]}, {_LINE_COLUMNS["name"]}, COALESCE({_LINE_COLUMNS["path"]}, ''),
    COALESCE({_LINE_COLUMNS["message"]}, ''), {_LINE_COLUMNS["fingerprint"]},
    s.first_seen, s.runs_seen, s.open_since, s.resolved_at
FROM fingerprints s
JOIN finding_contents fc ON fc.id = s.last_content
JOIN objects o ON o.id = fc.object
LEFT JOIN policies p ON p.id = fc.policy
"""


def known_finding_lines(db: Database, **filters: Unpack[KnownFilters]) -> list[FindingLine]:
    """`known_findings` with only what a line of text shows (`auditor findings`): the same
    findings in the same order, a third of the values and no model objects to build."""
    where, params = _known_filters(filters, _LINE_COLUMNS)
    return [
        FindingLine._make((*row[:9], parse_time(row[9]), *row[10:11], *map(parse_time, row[11:])))
        for row in db.conn.execute(_LINE_VALUES + where, params)
    ]


def _quoted(column: str) -> str:
    return f"json_quote(COALESCE({column}, ''))"


def _stored_json(column: str, default: str, kind: str | None = None) -> str:
    # A stored JSON column is JSON text already: written as it is, without parsing it again.
    # What Python's reader would not take (not JSON, not of `kind`) is its default instead.
    valid = f"json_valid({column})" + (f" AND json_type({column}) = '{kind}'" if kind else "")
    return f"CASE WHEN {valid} THEN {column} ELSE '{default}' END"


def _format(template: str, *values: str) -> str:
    """SQL that writes `values` into `template` at each `%s`, in one piece: a chain of `||`
    copies the text made so far at every step. A value is never read as a format."""
    assert template.count("%s") == len(values) and "'" not in template
    return f"format('{template}', {', '.join(values)})"


# `ReportFinding.to_json()` written by SQLite, key for key, up to its history: a finding's own
# keys, the optional ones (cluster, controls, details) when set; the object is left open for
# the history's keys. Text is put together, not built with json_object: parsing the stored
# JSON columns again would cost more than the Python it saves. Every value put in is text
# that is never NULL (format writes NULL as nothing).
_CHANGED_BY = _format(
    '{"manager": %s, "operation": %s, "time": %s}',
    "json_quote(v.changed_by_manager)",
    _quoted("v.changed_by_operation"),
    "json_quote(v.changed_by_time)",
)
_JSON_TEXT = _format(
    '{"category": %s, "check": %s, "severity": %s%s, "resource": {"apiVersion": %s,'
    ' "kind": %s, "namespace": %s, "name": %s}, "path": %s, "expected": %s,'
    ' "actual": %s, "message": %s, "changed_by": %s, "fingerprint": %s%s%s%s',
    "json_quote(v.category)",
    "json_quote(v.check_id)",
    "json_quote(v.severity)",
    "CASE WHEN v.category = 'drift' THEN ', \"class\": ' || json_quote(v.class) ELSE '' END",
    _quoted("v.api_version"),
    _quoted("v.kind"),
    _quoted("v.namespace"),
    _quoted("v.name"),
    _quoted("v.path"),
    _stored_json("v.expected", "null"),
    _stored_json("v.actual", "null"),
    _quoted("v.message"),
    f"CASE WHEN v.changed_by_manager != '' THEN {_CHANGED_BY} ELSE 'null' END",
    "json_quote(v.fingerprint)",
    "CASE WHEN v.cluster != '' THEN ', \"cluster\": ' || json_quote(v.cluster) ELSE '' END",
    "CASE WHEN v.controls != '[]' AND json_valid(v.controls)"
    " AND json_type(v.controls) = 'array' AND json_array_length(v.controls) > 0"
    " THEN ', \"controls\": ' || v.controls ELSE '' END",
    "CASE WHEN v.details != '{}' AND json_valid(v.details) AND json_type(v.details) = 'object'"
    " THEN ', \"details\": ' || v.details ELSE '' END",
)
# The history's keys are added in Python, made once for each history (most open findings share
# a handful): writing four times a finding in SQL took a fifth of this query.
_JSON_VALUE = f"""
SELECT {_JSON_TEXT}, {", ".join(f"s.{c}" for c in HISTORY_COLUMNS)}
FROM fingerprints s JOIN finding_values v ON v.id = s.last_content
"""


def known_findings_json(db: Database, **filters: Unpack[KnownFilters]) -> list[str]:
    """`known_findings`, each as the JSON text of its `to_json()` (the same value, its finding
    written by SQLite): `auditor findings -o json` without building a model object."""
    where, params = _known_filters(filters)
    endings: dict[tuple[Any, ...], str] = {}
    texts = []
    for row in db.conn.execute(_JSON_VALUE + where, params):
        kept = row[1:]
        ending = endings.get(kept)
        if ending is None:
            # to_json's own values, so the two readers cannot write a time differently
            ending = endings[kept] = ", " + json.dumps(history_from(kept).to_json())[1:]
        texts.append(row[0] + ending)
    return texts


@dataclass(frozen=True, slots=True)
class RunSighting:
    """One run over a finding's cluster since it was first seen, and whether it had it."""

    run: Run
    seen: bool
    severity: str | None  # as that run recorded it
    message: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run.id,
            "started": self.run.started.isoformat(),
            "status": self.run.status,
            "seen": self.seen,
            "severity": self.severity,
            "message": self.message,
        }


def finding_sightings(
    db: Database, fingerprint: str
) -> tuple[ReportFinding, list[RunSighting]] | None:
    """A finding as last seen with its history, and every finished run over its cluster from
    its first sighting on, oldest first, saying whether each had it; None when unknown."""
    rows = list(
        db.query(
            _KNOWN + " WHERE s.fingerprint = ? AND s.last_run IS NOT NULL",
            [stored_fingerprint(fingerprint)],
        )
    )
    if not rows:
        return None
    known = ReportFinding(finding_of(rows[0]), history_of(rows[0]))
    cluster = known.finding.ref.cluster
    seen = {
        row["run"]: row
        for row in db.query(
            "SELECT rf.run, v.severity, v.message FROM finding_values v"
            " JOIN run_findings rf ON rf.content = v.id WHERE v.finding = ?",
            [rows[0]["finding"]],
        )
    }
    timeline = []
    for row in db.query(
        "SELECT * FROM runs WHERE finished IS NOT NULL AND started >= ? ORDER BY started, id",
        [rows[0]["first_seen"]],
    ):
        run_value = run_of(row)
        in_scope = not cluster or cluster in {c.name for c in run_value.clusters}
        hit = seen.get(row["seq"])
        if hit is None and not in_scope:
            continue
        timeline.append(
            RunSighting(
                run_value,
                hit is not None,
                hit["severity"] if hit else None,
                hit["message"] if hit else None,
            )
        )
    return known, timeline


def errors(db: Database, run_id: str) -> list[dict[str, Any]]:
    """What the stages of one run (or "latest") could not do, in the order they reported it."""
    resolved = resolve_run_id(db, run_id)
    if resolved is None:
        return []
    return list(db.table("errors").rows_where("run_id = ?", [resolved], order_by="id"))


def _run_rows(db: Database, view: str, run_id: str, order_by: str) -> list[dict[str, Any]]:
    resolved = resolve_run_id(db, run_id)
    if resolved is None:
        return []
    rows = db.query(f"SELECT * FROM {view} WHERE run_id = ? ORDER BY {order_by}", [resolved])
    return list(rows) if view not in _JSON_COLUMNS else _decode(rows, view)


def resources(db: Database, run_id: str) -> list[dict[str, Any]]:
    """The resources one run (or "latest") looked at, with their verdicts."""
    return _run_rows(db, "resources", run_id, "cluster, kind, namespace, name, position")


def evaluations(db: Database, run_id: str) -> list[dict[str, Any]]:
    """Every policy x resource result of one run (or "latest"), pass included."""
    return _run_rows(db, "evaluations", run_id, "policy, cluster, kind, namespace, name, position")


def attestations(db: Database, run_id: str) -> list[dict[str, Any]]:
    """Every verification one run (or "latest") made, failed ones included."""
    return _run_rows(db, "attestations", run_id, "cluster, kind, namespace, name, id")

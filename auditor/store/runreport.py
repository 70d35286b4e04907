"""One stored run as a `RunReport`: everything `auditor report` renders, read in one go.

The run, its findings with their history and where Git declares their resources, its
evaluations, attestations, errors and resources, the policies it ran (with their METADATA as
it was then), the previous run over the same clusters (for "new since" and "resolved since")
and the trend of the runs before it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlite_utils import Database

from auditor.model import (
    AdmissionSummary,
    Finding,
    FindingHistory,
    ReportFinding,
    ResourceRecord,
    Run,
    RunReport,
    SourceLocation,
    api_group,
)
from auditor.store.decisions import summary as decision_summary
from auditor.store.queries import resolve_run_id
from auditor.store.values import (
    attestation_of,
    error_of,
    evaluation_of,
    finding_of,
    parse_time,
    policy_of,
    resource_of,
    run_of,
)

TREND_RUNS = 30
# Only a complete run looked at everything: an incomplete one would make what it missed
# look new tonight and resolved last night.
_COMPARABLE = ("complete",)

# A finding's history as it stood at the end of the run: what the sighting kept of it (runs
# seen, open since), and its first sighting, which no later run changes.
_FINDINGS = """
SELECT v.*, s.first_seen, rf.runs_seen, rf.open_since
FROM run_findings rf
JOIN finding_values v ON v.id = rf.content
LEFT JOIN fingerprints s ON s.id = v.finding AND s.last_run IS NOT NULL
WHERE rf.run = ?
ORDER BY rf.position
"""

LocationKey = tuple[str, str, str, str, str]


def _location_key(
    cluster: str, api_version: str, kind: str, namespace: str, name: str
) -> LocationKey:
    # Git's apiVersion may be older than the live one: match like drift does, without version.
    return (cluster, api_group(api_version), kind, namespace, name)


def _locations(resources: Iterable[ResourceRecord]) -> dict[LocationKey, SourceLocation]:
    found = {}
    for record in resources:
        path = record.git_path
        if path is not None:
            ref = record.ref
            key = _location_key(ref.cluster, ref.api_version, ref.kind, ref.namespace, ref.name)
            found[key] = SourceLocation(path, record.line)
    return found


def _history(row: Mapping[str, Any], seen: Run, resolved_by: Run | None) -> FindingHistory:
    """The history of a finding that run `seen` had, as it stood at the end of `seen`, or,
    with `resolved_by`, at the end of that later complete run which no longer had it."""
    started = seen.started
    first = parse_time(row["first_seen"]) or started  # None: pruned away, this run is all
    since = parse_time(row["open_since"]) if row["open_since"] is not None else first
    return FindingHistory(
        first_seen=first,
        last_seen=started,
        runs_seen=row["runs_seen"] or 1,
        open_since=None if resolved_by else since,
        resolved_at=resolved_by.started if resolved_by else None,
    )


def _report_finding(
    row: Mapping[str, Any],
    history: FindingHistory,
    new: bool,
    locations: Mapping[LocationKey, SourceLocation],
) -> ReportFinding:
    finding: Finding = finding_of(row)
    ref = finding.ref
    where = locations.get(
        _location_key(ref.cluster, ref.api_version, ref.kind, ref.namespace, ref.name)
    )
    return ReportFinding(finding, history, new=new, location=where)


def _rows(db: Database, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in db.query(sql, params)]


def _same_scope_runs(db: Database, run_row: Mapping[str, Any], limit: int) -> list[dict[str, Any]]:
    """Finished runs over the same clusters started before `run_row`, newest first."""
    this = run_of(run_row)
    clusters = sorted(c.name for c in this.clusters)
    found = []
    for row in db.query(
        "SELECT * FROM runs WHERE finished IS NOT NULL AND (started < ? OR (started = ? AND id < ?))"
        " ORDER BY started DESC, id DESC",
        [run_row["started"], run_row["started"], run_row["id"]],
    ):
        if sorted(c.name for c in run_of(row).clusters) == clusters:
            found.append(dict(row))
            if len(found) >= limit:
                break
    return found


def read_run_report(db: Database, run_id: str, *, trend: int = TREND_RUNS) -> RunReport | None:
    """The report of one run ("latest" for the latest finished one); None when there is none."""
    resolved = resolve_run_id(db, run_id)
    rows = _rows(db, "SELECT * FROM runs WHERE id = ?", [resolved]) if resolved else []
    if not rows:
        return None
    run_row = rows[0]
    run = run_of(run_row)
    earlier = _same_scope_runs(db, run_row, max(trend, 1) + 20)
    previous_row = next((r for r in earlier if r["status"] in _COMPARABLE), None)
    resources = tuple(
        resource_of(r)
        for r in _rows(db, "SELECT * FROM resources WHERE run_id = ? ORDER BY position", [run.id])
    )
    locations = _locations(resources)
    finding_rows = _rows(db, _FINDINGS, [run_row["seq"]])
    before = _rows(db, _FINDINGS, [previous_row["seq"]]) if previous_row else []
    before_prints = {r["fingerprint"] for r in before}
    now_prints = {r["fingerprint"] for r in finding_rows}
    findings = tuple(
        _report_finding(
            r,
            _history(r, run, None),
            r["fingerprint"] not in before_prints or not previous_row,
            locations,
        )
        for r in finding_rows
    )
    previous = run_of(previous_row) if previous_row else None
    resolved_since = tuple(
        # resolved by this run when it looked everywhere; else still open as far as it knows
        _report_finding(
            r, _history(r, previous, run if run.status == "complete" else None), False, locations
        )
        for r in before
        if r["fingerprint"] not in now_prints and previous is not None
    )
    return RunReport(
        run=run,
        exit_code=run_row.get("exit_code"),
        findings=findings,
        evaluations=tuple(
            evaluation_of(r)
            for r in _rows(
                db, "SELECT * FROM evaluations WHERE run_id = ? ORDER BY position", [run.id]
            )
        ),
        attestations=tuple(
            attestation_of(r)
            for r in _rows(db, "SELECT * FROM attestations WHERE run_id = ? ORDER BY id", [run.id])
        ),
        errors=tuple(
            error_of(r)
            for r in _rows(db, "SELECT * FROM errors WHERE run_id = ? ORDER BY id", [run.id])
        ),
        resources=resources,
        policies=tuple(
            policy_of(r)
            for r in _rows(
                db,
                "SELECT p.* FROM run_policies rp JOIN policies p ON p.id = rp.policy"
                " WHERE rp.run = ? ORDER BY p.policy",
                [run_row["seq"]],
            )
        ),
        previous=previous,
        resolved=resolved_since,
        trend=(*tuple(run_of(r) for r in reversed(earlier[: max(trend - 1, 0)])), run),
        admission=_admission(db, run, earlier[0] if earlier else None),
    )


def _admission(db: Database, run: Run, before: Mapping[str, Any] | None) -> AdmissionSummary | None:
    """The webhook's decisions from the end of the run before (any status: each decision
    falls in one run's report) to the end of this one, on this run's clusters."""
    after = None
    if before is not None:
        earlier = run_of(before)
        after = earlier.finished or earlier.started
    clusters = [c.name for c in run.clusters]
    return decision_summary(db, after=after, until=run.finished, clusters=clusters)

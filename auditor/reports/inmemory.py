"""A `RunReport` of a run that was not stored (`auditor audit --report` without a store):
the same reports, with history limited to this one run."""

from __future__ import annotations

from auditor.model import (
    AuditResult,
    FindingHistory,
    ReportFinding,
    ResourceRecord,
    RunReport,
    SourceLocation,
)


def report_of_result(result: AuditResult, *, exit_code: int) -> RunReport:
    run = result.run
    records = tuple(
        ResourceRecord(s.ref, s.status, s.desired_origin or "", line=s.desired_line)
        for s in result.statuses
    )
    where = {
        (r.ref.cluster, r.ref.group, r.ref.kind, r.ref.namespace, r.ref.name): SourceLocation(
            r.git_path, r.line
        )
        for r in records
        if r.git_path is not None
    }
    seen = FindingHistory(run.started, run.started, 1, run.started, None)
    findings = tuple(
        ReportFinding(
            f,
            seen,
            new=True,
            location=where.get(
                (f.ref.cluster, f.ref.group, f.ref.kind, f.ref.namespace, f.ref.name)
            ),
        )
        for f in result.findings
    )
    return RunReport(
        run=run,
        exit_code=exit_code,
        findings=findings,
        evaluations=result.evaluations,
        attestations=result.attestations,
        errors=result.errors,
        resources=records,
        policies=result.policies,
        trend=(run,),
    )

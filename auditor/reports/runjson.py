"""`auditor report --format json`: the stored run as one JSON document (DESIGN "Reports and
history": `{"run", "findings", "evaluations", "attestations", "errors"}`), plus the summary,
the previous run and what was resolved since."""

from __future__ import annotations

from typing import Any

from auditor.model import Attestation, Evaluation, ReportFinding, Run, RunReport, iso
from auditor.reports.summary import summarize


def run_json(run: Run, exit_code: int | None = None) -> dict[str, Any]:
    return {
        "id": run.id,
        "trigger": run.trigger,
        "status": run.status,
        "started": iso(run.started),
        "finished": iso(run.finished),
        "exit_code": exit_code,
        "git": {"repo": run.git_repo, "revision": run.git_revision, "commit": run.git_commit},
        "clusters": [c.to_json() for c in run.clusters],
        "counts": dict(run.counts),
    }


def finding_json(finding: ReportFinding) -> dict[str, Any]:
    out = finding.to_json()
    out["new"] = finding.new
    if finding.location is not None:
        out["location"] = {"path": finding.location.path, "line": finding.location.line}
    return out


def evaluation_json(evaluation: Evaluation) -> dict[str, Any]:
    return {
        "policy": evaluation.policy,
        "resource": evaluation.ref.to_json() if evaluation.ref else None,
        "cluster": evaluation.ref.cluster if evaluation.ref else None,
        "result": evaluation.result,
        "messages": [
            {"rule": m.rule, "msg": m.msg, "details": dict(m.details)} for m in evaluation.messages
        ],
        "error": evaluation.error,
        "duration_ms": evaluation.duration_ms,
    }


def attestation_json(attestation: Attestation) -> dict[str, Any]:
    ref = attestation.ref
    return {
        "attestation": attestation.attestation,
        "resource": ref.to_json() if ref else None,
        "cluster": ref.cluster if ref else None,
        "verified": attestation.verified,
        "source": attestation.source,
        "bundle_digest": attestation.bundle_digest,
        "subject_digest": attestation.subject_digest,
        "authority": attestation.authority,
        "identity": attestation.identity,
        "reason": attestation.reason,
        "details": dict(attestation.details),
    }


def report_document(report: RunReport) -> dict[str, Any]:
    return {
        "run": run_json(report.run, report.exit_code),
        "summary": summarize(report).to_json(),
        "findings": [finding_json(f) for f in report.findings],
        "evaluations": [evaluation_json(e) for e in report.evaluations],
        "attestations": [attestation_json(a) for a in report.attestations],
        "errors": [e.to_json() for e in report.errors],
        "previous_run": report.previous.id if report.previous else None,
        "resolved_since_previous": [finding_json(f) for f in report.resolved],
        # the webhook's decisions since the previous run; null when the store holds none
        "admission": report.admission.to_json() if report.admission is not None else None,
        "policies": [
            {
                "id": p.id,
                "title": p.title,
                "description": p.description,
                "severity": p.severity,
                "controls": list(p.controls),
                "source": p.source,
                "digest": p.digest,
            }
            for p in report.policies
        ],
    }

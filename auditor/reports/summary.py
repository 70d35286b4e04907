"""What every report says about a run before listing findings: counts per category and
severity, the policy pass rate, compliance per control id, findings per cluster and
namespace, and the trend over earlier runs. Pure functions of a `RunReport`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from auditor.model import (
    EVALUATION_RESULTS,
    SEVERITIES,
    SEVERITY_RANK,
    Evaluation,
    ReportFinding,
    Run,
    RunReport,
    result_counts,
)

CATEGORIES = ("drift", "provenance", "policy", "error")


@dataclass(frozen=True, slots=True)
class PolicyRow:
    policy: str
    title: str
    controls: tuple[str, ...]
    counts: dict[str, int]  # pass, fail, warn, error

    @property
    def evaluated(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True, slots=True)
class ControlRow:
    control: str
    evaluated: int  # evaluations of the policies that map to it
    passed: int
    findings: int  # findings of this run that name it

    @property
    def rate(self) -> float | None:
        return self.passed / self.evaluated if self.evaluated else None


@dataclass(frozen=True, slots=True)
class ScopeRow:
    cluster: str
    namespace: str
    by_severity: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())


@dataclass(frozen=True, slots=True)
class TrendPoint:
    run: Run
    by_severity: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_severity.values())


@dataclass(frozen=True, slots=True)
class Summary:
    by_category: dict[str, dict[str, int]]  # category -> severity -> count
    by_severity: dict[str, int]
    policy: dict[str, int]  # evaluated, pass, fail, warn, error
    policies: tuple[PolicyRow, ...]
    controls: tuple[ControlRow, ...]
    scopes: tuple[ScopeRow, ...]
    resources: dict[str, int]  # drift verdicts: in_sync, drifted, missing, unmanaged, ...
    trend: tuple[TrendPoint, ...]

    @property
    def pass_rate(self) -> float | None:
        evaluated = self.policy["evaluated"]
        return self.policy["pass"] / evaluated if evaluated else None

    def to_json(self) -> dict[str, Any]:
        return {
            "findings": {"total": sum(self.by_severity.values()), **self.by_severity},
            "by_category": self.by_category,
            "policy": {**self.policy, "pass_rate": self.pass_rate},
            "controls": [
                {
                    "control": c.control,
                    "evaluated": c.evaluated,
                    "passed": c.passed,
                    "findings": c.findings,
                }
                for c in self.controls
            ],
            "resources": self.resources,
        }


def _severity_counts(findings: list[ReportFinding] | tuple[ReportFinding, ...]) -> dict[str, int]:
    counts = Counter(f.finding.severity for f in findings)
    return {s: counts.get(s, 0) for s in SEVERITIES}


def _policy_rows(report: RunReport) -> tuple[PolicyRow, ...]:
    info = {p.id: p for p in report.policies}
    per: dict[str, Counter[str]] = {}
    for evaluation in report.evaluations:
        per.setdefault(evaluation.policy, Counter())[evaluation.result] += 1
    for policy in info:
        per.setdefault(policy, Counter())
    rows = []
    for policy, counts in sorted(per.items()):
        described = info.get(policy)
        rows.append(
            PolicyRow(
                policy,
                described.title if described else "",
                described.controls if described else (),
                {r: counts.get(r, 0) for r in EVALUATION_RESULTS},
            )
        )
    return tuple(rows)


def _control_rows(report: RunReport, policies: tuple[PolicyRow, ...]) -> tuple[ControlRow, ...]:
    evaluated: Counter[str] = Counter()
    passed: Counter[str] = Counter()
    for row in policies:
        for control in row.controls:
            evaluated[control] += row.evaluated
            passed[control] += row.counts["pass"]
    named: Counter[str] = Counter(c for f in report.findings for c in f.finding.controls)
    controls = sorted(set(evaluated) | set(named))
    return tuple(ControlRow(c, evaluated[c], passed[c], named[c]) for c in controls)


def _scope_rows(report: RunReport) -> tuple[ScopeRow, ...]:
    groups: dict[tuple[str, str], list[ReportFinding]] = {}
    for finding in report.findings:
        ref = finding.finding.ref
        groups.setdefault((ref.cluster, ref.namespace), []).append(finding)
    return tuple(
        ScopeRow(cluster, namespace, _severity_counts(found))
        for (cluster, namespace), found in sorted(groups.items())
    )


def trend_point(run: Run) -> TrendPoint:
    """A run's findings per severity, from the counts it was stored with."""
    return TrendPoint(run, {s: int(run.counts.get(s, 0)) for s in SEVERITIES})


def policy_totals(evaluations: tuple[Evaluation, ...]) -> dict[str, int]:
    return {"evaluated": len(evaluations), **result_counts(evaluations)}


def summarize(report: RunReport) -> Summary:
    by_category = {
        category: _severity_counts([f for f in report.findings if f.finding.category == category])
        for category in CATEGORIES
    }
    policies = _policy_rows(report)
    verdicts = Counter(r.status for r in report.resources)
    return Summary(
        by_category=by_category,
        by_severity=_severity_counts(report.findings),
        policy=policy_totals(report.evaluations),
        policies=policies,
        controls=_control_rows(report, policies),
        scopes=_scope_rows(report),
        resources=dict(sorted(verdicts.items())),
        trend=tuple(trend_point(run) for run in report.trend),
    )


def by_severity(findings: tuple[ReportFinding, ...]) -> list[ReportFinding]:
    """Most severe first, then by resource and path: the order every list is shown in."""
    return sorted(
        findings,
        key=lambda f: (
            -SEVERITY_RANK[f.finding.severity],
            f.finding.ref.cluster,
            f.finding.ref.kind,
            f.finding.ref.namespace,
            f.finding.ref.name,
            f.finding.path,
            f.finding.check,
        ),
    )

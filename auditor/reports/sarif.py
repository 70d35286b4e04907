"""`auditor report --format sarif`: SARIF 2.1.0 for code-scanning tools.

One rule per registered check (`checks.py`) and per policy the run evaluated (title, help and
default level from its METADATA); one result per finding, at the Git file and line that
declares its resource when Git does, else at a logical location naming the object. The
finding's fingerprint is the result's `partialFingerprints`, so a tool tracks it across runs.
"""

from __future__ import annotations

from typing import Any

import auditor
from auditor.checks import CHECKS
from auditor.model import ReportFinding, RunReport, Severity, iso

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
FINGERPRINT_KEY = "auditorFingerprint/v1"
_LEVEL: dict[str, str] = {
    "critical": "error",
    "high": "error",
    "medium": "warning",
    "low": "note",
    "info": "note",
}
# What GitHub code scanning shows as security severity (a CVSS-like score).
_SCORE: dict[str, str] = {
    "critical": "9.5",
    "high": "7.5",
    "medium": "5.0",
    "low": "2.0",
    "info": "0.0",
}


def _rule(
    rule_id: str,
    title: str,
    help_text: str,
    severity: Severity,
    category: str,
    tags: tuple[str, ...],
) -> dict[str, Any]:
    return {
        "id": rule_id,
        "shortDescription": {"text": title or rule_id},
        "fullDescription": {"text": help_text or title or rule_id},
        "help": {"text": help_text or title or rule_id},
        "defaultConfiguration": {"level": _LEVEL[severity]},
        "properties": {
            "category": category,
            "tags": [category, *tags],
            "problem.severity": _LEVEL[severity],
            "security-severity": _SCORE[severity],
        },
    }


def _rules(report: RunReport) -> list[dict[str, Any]]:
    rules = {
        check.id: _rule(check.id, check.title, check.help, check.severity, check.category, ())
        for check in CHECKS.values()
    }
    for policy in report.policies:
        help_text = policy.description or policy.title
        if policy.source:
            help_text = f"{help_text} (policy {policy.source})".strip()
        rules[policy.id] = _rule(
            policy.id, policy.title, help_text, policy.severity, "policy", policy.controls
        )
    for item in report.findings:  # a check no registry or policy of the run describes
        f = item.finding
        if f.check not in rules:
            rules[f.check] = _rule(f.check, f.check, f.message, f.severity, f.category, f.controls)
    return [rules[key] for key in sorted(rules)]


def _location(item: ReportFinding) -> dict[str, Any]:
    ref = item.finding.ref
    logical = {
        "name": ref.name,
        "fullyQualifiedName": "/".join(
            x for x in (ref.cluster, ref.api_version, ref.kind, ref.namespace, ref.name) if x
        ),
        "kind": "object" if ref.kind else "module",
    }
    location: dict[str, Any] = {"logicalLocations": [logical]}
    if item.location is not None:
        physical: dict[str, Any] = {
            "artifactLocation": {"uri": item.location.path, "uriBaseId": "SRCROOT"}
        }
        if item.location.line:
            physical["region"] = {"startLine": item.location.line}
        location["physicalLocation"] = physical
    return location


def _result(item: ReportFinding, index: dict[str, int]) -> dict[str, Any]:
    f = item.finding
    properties: dict[str, Any] = {
        "category": f.category,
        "severity": f.severity,
        "resource": f.ref.to_json(),
        "cluster": f.ref.cluster,
        "path": f.path,
        "firstSeen": iso(item.history.first_seen),
        "openSince": iso(item.history.open_since),
        "new": item.new,
    }
    if f.drift_class:
        properties["class"] = f.drift_class
    if f.expected is not None or f.actual is not None:
        properties["expected"] = f.expected
        properties["actual"] = f.actual
    if f.controls:
        properties["controls"] = list(f.controls)
    return {
        "ruleId": f.check,
        "ruleIndex": index[f.check],
        "level": _LEVEL[f.severity],
        "message": {"text": f.message or f.check},
        "locations": [_location(item)],
        "partialFingerprints": {FINGERPRINT_KEY: f.fingerprint},
        "baselineState": "new" if item.new else "unchanged",
        "properties": properties,
    }


def _invocation(report: RunReport) -> dict[str, Any]:
    run = report.run
    invocation: dict[str, Any] = {
        "executionSuccessful": report.complete,
        "startTimeUtc": iso(run.started),
        "toolExecutionNotifications": [
            {
                "level": "error",
                "message": {
                    "text": " ".join(x for x in (error.cluster, error.target) if x)
                    + ": "
                    + error.message
                    if error.cluster or error.target
                    else error.message
                },
                "descriptor": {"id": f"stage.{error.stage}"},
            }
            for error in report.errors
        ],
        "properties": {"status": run.status},
    }
    if run.finished is not None:
        invocation["endTimeUtc"] = iso(run.finished)
    if report.exit_code is not None:
        invocation["exitCode"] = report.exit_code
    return invocation


def sarif_document(report: RunReport) -> dict[str, Any]:
    run = report.run
    rules = _rules(report)
    index = {rule["id"]: n for n, rule in enumerate(rules)}
    clusters = "+".join(sorted(c.name for c in run.clusters)) or "none"
    sarif_run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "auditor",
                "version": auditor.__version__,
                "rules": rules,
            }
        },
        # the category (before the last slash) stays the same from run to run of one scope
        "automationDetails": {"id": f"auditor/{clusters}/{run.id}"},
        "invocations": [_invocation(report)],
        "results": [_result(item, index) for item in report.findings],
        "properties": {"run": run.id, "gitCommit": run.git_commit, "gitRepo": run.git_repo},
    }
    if "://" in run.git_repo and run.git_commit:
        sarif_run["versionControlProvenance"] = [
            {
                "repositoryUri": run.git_repo,
                "revisionId": run.git_commit,
                "branch": run.git_revision,
            }
        ]
    return {"$schema": SCHEMA, "version": "2.1.0", "runs": [sarif_run]}

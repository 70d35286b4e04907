"""`auditor report --format policyreport`: `wgpolicyk8s.io/v1alpha2` PolicyReports (one per
namespace) and a ClusterPolicyReport (cluster-scoped objects), for `kubectl apply` and
Policy Reporter.

One result per policy evaluation (`pass`, `fail`, `warn`, `error`), and one per drift or
provenance finding (`fail`, or `warn` at low and info); each report's `summary` counts its
results. A run over several clusters yields one set per cluster, named after it: apply each
set to its cluster (the label `auditor.gitops.ml/cluster` says which).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any

import yaml

from auditor.model import Evaluation, ReportFinding, ResourceRef, RunReport, iso
from auditor.reports.escaping import as_text

# libyaml's emitter where PyYAML was built with it: the pure-Python one took 9 of the 11 s of
# writing the reports of a run of 10,000 findings (105,000 results)
_DUMPER: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

API_VERSION = "wgpolicyk8s.io/v1alpha2"
CLUSTER_LABEL = "auditor.gitops.ml/cluster"
RUN_ANNOTATION = "auditor.gitops.ml/run"
_RESULT_KEYS = ("pass", "fail", "warn", "error", "skip")
_NOT_DNS = re.compile(r"[^a-z0-9-]+")


def report_name(cluster: str) -> str:
    """`auditor` or `auditor-<cluster>`, a valid object name whatever the cluster is called."""
    if not cluster:
        return "auditor"
    cleaned = _NOT_DNS.sub("-", cluster.lower()).strip("-")[:40].strip("-")
    if cleaned != cluster:  # keep two clusters that clean to one name apart
        cleaned = f"{cleaned}-{hashlib.sha256(cluster.encode()).hexdigest()[:8]}".strip("-")
    return f"auditor-{cleaned}"


def _label_value(cluster: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", cluster)[:63].strip("-_.")
    return value or "none"


def _resource(ref: ResourceRef) -> dict[str, str]:
    out = {"apiVersion": ref.api_version, "kind": ref.kind, "name": ref.name}
    if ref.namespace:
        out["namespace"] = ref.namespace
    return out


def _evaluation_result(
    evaluation: Evaluation, titles: dict[str, str], severities: dict[tuple[str, Any], str]
) -> dict[str, Any]:
    messages = "; ".join(m.msg for m in evaluation.messages)
    if evaluation.result == "error":
        messages = evaluation.error or "policy error"
    severity = severities.get((evaluation.policy, evaluation.ref))
    result: dict[str, Any] = {
        "policy": evaluation.policy,
        "rule": ",".join(dict.fromkeys(m.rule for m in evaluation.messages))
        or titles.get(evaluation.policy)
        or evaluation.policy,
        "category": "policy",
        "result": evaluation.result,
        "source": "auditor",
        "scored": True,
        "message": messages or f"{titles.get(evaluation.policy) or evaluation.policy}: passed",
    }
    if severity is not None:
        result["severity"] = severity
    if evaluation.ref is not None:
        result["resources"] = [_resource(evaluation.ref)]
    return result


def _finding_result(item: ReportFinding) -> dict[str, Any]:
    f = item.finding
    properties = {
        "fingerprint": f.fingerprint,
        "path": f.path,
        "firstSeen": iso(item.history.first_seen) or "",
        "openSince": iso(item.history.open_since) or "",
    }
    if f.expected is not None:
        properties["expected"] = as_text(f.expected)
    if f.actual is not None:
        properties["actual"] = as_text(f.actual)
    if f.drift_class:
        properties["class"] = f.drift_class
    if f.controls:
        properties["controls"] = ",".join(f.controls)
    return {
        "policy": f.check,
        "rule": f.path or f.check,
        "category": f.category,
        "severity": f.severity,
        "result": "warn" if f.severity in ("low", "info") else "fail",
        "source": "auditor",
        "scored": True,
        "message": f.message or f.check,
        "resources": [_resource(f.ref)],
        "properties": properties,
    }


def _empty(kind: str, cluster: str, namespace: str, report: RunReport) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "name": report_name(cluster),
        "labels": {
            "app.kubernetes.io/managed-by": "auditor",
            CLUSTER_LABEL: _label_value(cluster),
        },
        "annotations": {RUN_ANNOTATION: report.run.id},
    }
    if namespace:
        metadata["namespace"] = namespace
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": metadata,
        "summary": {},
        "results": [],
    }


def policy_reports(report: RunReport) -> list[dict[str, Any]]:
    """The PolicyReport and ClusterPolicyReport objects of a run, in a stable order."""
    titles = {p.id: p.title for p in report.policies}
    # the severity of a failed evaluation is its findings' (METADATA, overrides applied)
    severities: dict[tuple[str, Any], str] = {}
    for item in report.findings:
        severities.setdefault((item.finding.check, item.finding.ref), item.finding.severity)
    timestamp = {"seconds": int(report.run.started.timestamp()), "nanos": 0}
    reports: dict[tuple[str, str], dict[str, Any]] = {}

    def add(ref: ResourceRef | None, result: dict[str, Any]) -> None:
        cluster, namespace = (ref.cluster, ref.namespace) if ref else ("", "")
        kind = "PolicyReport" if namespace else "ClusterPolicyReport"
        target = reports.setdefault((cluster, namespace), _empty(kind, cluster, namespace, report))
        target["results"].append({**result, "timestamp": timestamp})

    for evaluation in report.evaluations:
        add(evaluation.ref, _evaluation_result(evaluation, titles, severities))
    for item in report.findings:
        if item.finding.category in ("drift", "provenance"):
            add(item.finding.ref, _finding_result(item))
    for error in report.errors:  # an incomplete run says so where machines look
        ref = ResourceRef(error.cluster, "", "", "", "") if error.cluster else None
        add(
            ref,
            {
                "policy": f"auditor.stage.{error.stage}",
                "rule": error.target or error.stage,
                "category": "error",
                "result": "error",
                "source": "auditor",
                "scored": True,
                "message": error.message,
            },
        )
    for document in reports.values():
        counts = Counter(r["result"] for r in document["results"])
        document["summary"] = {key: counts.get(key, 0) for key in _RESULT_KEYS}
    return [reports[key] for key in sorted(reports)]


def policyreport_document(report: RunReport) -> str:
    """Multi-document YAML, ready for `kubectl apply -f`."""
    header = "# auditor PolicyReports: apply each to the cluster its label names\n"
    return header + yaml.dump_all(
        policy_reports(report),
        Dumper=_DUMPER,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
    )

"""The shipped alerts read metrics the audit really writes: a renamed metric fails here, not
silently in Prometheus. (The PrometheusRule is a CRD: kubernetes-validate has no schema for it,
so its shape is checked here and its metric names against `registry_of`.)"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import kubernetes_validate
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from auditor.observe.metrics import RunMetrics, registry_of
from tests.conftest import PROJECT
from tests.deploy.test_cron_manifests import build

ALERTS = PROJECT / "deploy" / "cron" / "alerts"
METRIC = re.compile(r"\bauditor_[a-z_]+\b")


def written_metric_names() -> set[str]:
    from prometheus_client import generate_latest

    started = datetime(2026, 1, 1, tzinfo=UTC)
    metrics = RunMetrics(
        status="complete",
        exit_code=0,
        started=started,
        finished=started + timedelta(seconds=5),
        stages={("live", "prod"): True},
        resources={"in_sync": 1},
    )
    text = generate_latest(registry_of(metrics, last_success=None)).decode()
    return {s.name for f in text_string_to_metric_families(text) for s in f.samples}


def test_every_alert_reads_a_metric_the_audit_writes() -> None:
    [rule] = build(ALERTS)
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    alerts = [r for group in rule["spec"]["groups"] for r in group["rules"]]
    assert {a["alert"] for a in alerts} >= {"AuditorNoRecentSuccess", "AuditorRunIncomplete"}
    written = written_metric_names()
    for alert in alerts:
        used = set(METRIC.findall(alert["expr"]))
        assert used and used <= written, (alert["alert"], used - written)
        assert alert["annotations"]["runbook"].startswith("docs/operations.md#")


def test_every_runbook_anchor_is_a_heading_of_the_operations_page() -> None:
    page = (PROJECT / "docs" / "operations.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in page.splitlines()
        if line.startswith("#")
    }
    rule = yaml.safe_load((ALERTS / "prometheusrule.yaml").read_text())
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            anchor = alert["annotations"]["runbook"].partition("#")[2]
            assert anchor in anchors, anchor


def test_the_validator_has_no_schema_for_the_crd() -> None:
    # said in the module docstring; if a later kubernetes-validate learns it, validate it
    [rule] = build(ALERTS)
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(rule, kubernetes_validate.latest_version(), strict=True)

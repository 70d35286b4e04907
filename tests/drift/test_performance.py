"""10,000 desired and 10,000 live objects with 1% drift: exactly that drift is reported."""

from __future__ import annotations

import copy
from typing import Any

from auditor.config import DriftSettings
from auditor.drift import compute_drift
from auditor.model import Resource
from auditor.scope import Scope
from tests.drift.builders import (
    configmap_desired,
    configmap_live,
    deployment_desired,
    deployment_live,
    desired,
    isvc_desired,
    isvc_live,
    live,
    service_desired,
    service_live,
)

OBJECTS = 10_000

TEMPLATES = [
    (deployment_desired, deployment_live),
    (service_desired, service_live),
    (configmap_desired, configmap_live),
    (isvc_desired, isvc_live),
]


def fleet() -> tuple[list[Resource], list[Resource]]:
    """Realistic objects (server defaults, managedFields, status) across 50 namespaces."""
    made = [(want(), have()) for want, have in TEMPLATES]
    want_all, have_all = [], []
    for i in range(OBJECTS):
        want, have = made[i % len(made)]
        w, h = copy.deepcopy(want), copy.deepcopy(have)
        name, namespace = f"{w['metadata']['name']}-{i}", f"team-{i % 50}"
        for body in (w, h):
            body["metadata"]["name"], body["metadata"]["namespace"] = name, namespace
        if i % 100 == 0:  # 1% drift
            _drift(h)
        want_all.append(desired(w))
        have_all.append(live(h))
    return want_all, have_all


def _drift(body: dict[str, Any]) -> None:
    if body["kind"] == "Deployment":
        body["spec"]["template"]["spec"]["containers"][0]["image"] = "ghcr.io/acme/other:1"
    elif body["kind"] == "Service":
        body["spec"]["ports"][0]["targetPort"] = 9999
    elif body["kind"] == "ConfigMap":
        body["data"]["threshold"] = "0.5"
    else:
        body["spec"]["predictor"]["model"]["storageUri"] = "gs://models/fraud/v9"


def test_ten_thousand_objects_with_one_percent_drift_report_exactly_that_drift() -> None:
    # Correctness at scale; the time it takes is measured by bench/drift, not asserted here.
    want, have = fleet()
    result = compute_drift(want, have, scope=Scope.from_desired(want), settings=DriftSettings())
    assert result.summary.resources == OBJECTS
    assert result.summary.drifted == OBJECTS // 100
    assert len(result.findings) == OBJECTS // 100
